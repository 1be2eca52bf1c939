"""The accelerator's instruction set: encoding (``amaranth.lib.data`` layouts built from the
:class:`~rtl.config.HardwareConfig`) and semantics.

An instruction word is ``op`` (4 bits), ``flags`` (4 bits) and an ``args`` union whose member is
chosen by ``op``. Every field width follows from the configuration (address widths of the
memories it names), so the instruction word of a bigger configuration is wider; programs are
stored ``instr_bytes(cfg)`` bytes per instruction, little-endian. The vector instructions
(``VADD`` .. ``MOVE``) share one field placement (:func:`vector_layout`): ``dst``, ``a``, ``b``
(activation word addresses), ``n`` (words) and ``shift`` sit at the same bits in every one of
them, each member naming only the fields it uses, so the controller decodes them through one
view. Their member is never wider than ``LOAD``'s or ``MATVEC``'s for the presets, so adding
them left the instruction width (and every ``END``/``LOAD``/``MATVEC`` word) unchanged.

Semantics
---------
One instruction at a time; the controller fetches the next when the previous is done.
Notation: ``A[w]`` is activation-SRAM word ``w`` (``K`` int8 elements, element ``e`` of the
SRAM is element ``e % K`` of word ``e // K``); vector instructions work element-wise over the
``n*K`` elements of ``n`` consecutive words; ``sat_b`` clamps to ``[-2**(b-1), 2**(b-1) - 1]``;
``rshr(x, s) = (x + (1 << (s-1))) >> s`` (``>>`` flooring; ``rshr(x, 0) = x``): the rounding
of :mod:`model.intref`. Word addresses wrap modulo ``act_depth``. A vector instruction reads
all its sources before it writes a word, so ``dst == a`` (in place) is allowed; a destination
that *partly* overlaps a source is undefined (the compiler never emits one).

``END``
    Stop; the accelerator raises ``done`` and waits for the next ``start``.
``LOAD`` (``flags.PARAMS = 0``, ``flags.LUT = 0``: weights)
    Stream ``dram_len`` DRAM words from ``dram_addr`` through the decompressor: the stream holds
    ``count`` compressed weight words *per lane*, lane 0 first. Lane ``l``'s ``i``-th word is
    rebuilt (zeros filled back in) and written to its weight SRAM at ``dest + i``.
``LOAD`` (``flags.PARAMS = 1``: per-row parameters)
    Same stream, but ``count`` 16-byte parameter records per lane go to the lanes' parameter
    memories at ``dest + i``.
``LOAD`` (``flags.LUT = 1``: lookup tables)
    Same stream, ``count`` 16-byte raw records *in all* (not per lane) to the LUT memory, record
    ``i`` to LUT row ``(dest + i) % LUT_ROWS``. The LUT memory holds :data:`LUT_TABLES` tables of
    256 int8 entries, ``LUT_ROWS = 32`` rows of 16 bytes: entry ``e`` of table ``t`` is byte
    ``e % 16`` of row ``16*t + e // 16``. ``flags.PARAMS`` and ``flags.LUT`` are exclusive.
``MATVEC`` (``flags.DENSE = 1`` disables zero skipping)
    Every lane runs ``n_rows`` row slots; slot ``i`` multiplies the weight words
    ``w_base + i*n_words .. + n_words - 1`` with the activation words ``in_base ..
    in_base + n_words - 1``, adds the slot's bias, requantizes with its multiplier and shift
    (see :mod:`rtl.memfmt`) and, if the slot's ``write`` flag is set, stores the int8 result at
    activation element ``out_base*K + out_index``. Done when every result is written.
``VADD dst, a, b, n``
    ``A[dst+i][k] = sat_8(A[a+i][k] + A[b+i][k])`` for ``i < n``, ``k < K``.
``VMUL dst, a, b, n, shift``
    ``A[dst+i][k] = sat_8(rshr(A[a+i][k] * A[b+i][k], shift))``, ``0 <= shift <= 15``.
``LUT dst, a, n`` (``flags.TANH`` selects table 1, else table 0)
    ``A[dst+i][k] = TABLE_t[A[a+i][k] + 128]``. The compiler loads sigmoid into table 0 and tanh
    into table 1 (:data:`LUT_SIGMOID`, :data:`LUT_TANH`); the hardware knows no function.
``CELL dst, a, b, n`` (the LSTM cell for ``n*K`` units, :func:`model.intref.lstm_cell`)
    Gates (already through their LUTs) at ``a``: ``i``, ``f``, ``g``, ``o`` blocks of ``n``
    words (``i = A[a+w]``, ``f = A[a+n+w]``, ``g = A[a+2n+w]``, ``o = A[a+3n+w]``); the int16
    cell state as two planes at ``b``: ``lo = A[b+w]``, ``hi = A[b+n+w]``,
    ``c = hi*256 + (lo & 0xFF)``. For every unit::

        c' = sat_16(rshr(f*c, 7) + rshr(i*g, 3))
        h  = sat_8(rshr(o * TABLE_1[sat_8(rshr(c', 6)) + 128], 7))

    ``h`` goes to ``A[dst+w]``; ``c'`` back to the planes at ``b`` (``lo`` = its low byte as
    int8, ``hi = c' >> 8``). ``dst`` must not overlap ``a`` or ``b``.
``MOVE dst, a, n`` (``flags.INDEXED``: source ``a + ARG*n``)
    ``A[dst+i] = A[src+i]`` for ``i < n``, ``src = a`` or, indexed, ``a + ARG*n`` where ``ARG``
    is the host-written argument register (sampled with ``start``; the token of the embedding
    lookup).

Fields: ``dst``, ``a``, ``b`` are ``act_addr_bits`` wide, ``n`` ``act_addr_bits + 1``,
``shift`` 4 bits. A flag bit an operation does not define must be zero (:func:`encode` refuses
it; the hardware ignores it).
"""

from __future__ import annotations

from amaranth.lib import data, enum

from .config import HardwareConfig

__all__ = ["Op", "LoadFlags", "MatvecFlags", "LutFlags", "MoveFlags", "instruction_layout",
           "load_layout", "matvec_layout", "vector_layout", "instr_bytes", "encode", "decode",
           "end", "load", "matvec", "vadd", "vmul", "lut", "cell", "move", "ISAError",
           "program_bytes", "program_words", "disassemble", "LUT_TABLES", "LUT_ENTRIES",
           "LUT_ROW_BYTES", "LUT_ROWS", "LUT_SIGMOID", "LUT_TANH", "VMUL_MAX_SHIFT"]


class ISAError(ValueError):
    """An instruction that cannot be encoded for this configuration."""


class Op(enum.Enum, shape=4):
    END = 0
    LOAD = 1
    MATVEC = 2
    VADD = 3
    VMUL = 4
    LUT = 5
    CELL = 6
    MOVE = 7


class LoadFlags:
    PARAMS = 1
    LUT = 2


class MatvecFlags:
    DENSE = 1


class LutFlags:
    TANH = 1     #: select table 1 (else table 0)


class MoveFlags:
    INDEXED = 1  #: source ``a + ARG*n``


#: Lookup tables in the LUT memory, entries per table, bytes per LUT-memory row (one LOAD
#: record), rows.
LUT_TABLES = 2
LUT_ENTRIES = 256
LUT_ROW_BYTES = 16
LUT_ROWS = LUT_TABLES * LUT_ENTRIES // LUT_ROW_BYTES
#: The table numbers the compiler uses (the hardware only knows numbers).
LUT_SIGMOID = 0
LUT_TANH = 1
#: Largest ``VMUL`` shift (its field is 4 bits).
VMUL_MAX_SHIFT = 15

#: Flag bits each operation defines (the others must be zero).
_FLAGS = {"END": 0, "LOAD": LoadFlags.PARAMS | LoadFlags.LUT, "MATVEC": MatvecFlags.DENSE,
          "VADD": 0, "VMUL": 0, "LUT": LutFlags.TANH, "CELL": 0, "MOVE": MoveFlags.INDEXED}


def load_layout(cfg: HardwareConfig) -> data.StructLayout:
    tgt = max(cfg.wsram_addr_bits, cfg.param_addr_bits)
    return data.StructLayout({
        "dram_addr": cfg.dram_addr_bits,
        "dram_len": cfg.dram_addr_bits + 1,
        "count": tgt + 1,
        "dest": tgt,
    })


def matvec_layout(cfg: HardwareConfig) -> data.StructLayout:
    return data.StructLayout({
        "w_base": cfg.wsram_addr_bits,
        "p_base": cfg.param_addr_bits,
        "n_rows": cfg.param_addr_bits + 1,
        "n_words": cfg.wsram_addr_bits + 1,
        "in_base": cfg.act_addr_bits,
        "out_base": cfg.act_addr_bits,
    })


def vector_layout(cfg: HardwareConfig) -> data.StructLayout:
    """The common field placement of the vector instructions: ``dst``, ``a``, ``b``
    (``act_addr_bits`` each), ``n`` (``act_addr_bits + 1``), ``shift`` (4)."""
    ab = cfg.act_addr_bits
    return data.StructLayout({"dst": ab, "a": ab, "b": ab, "n": ab + 1, "shift": 4})


#: The fields each vector instruction uses (at their :func:`vector_layout` positions).
_VECTOR_FIELDS = {
    "vadd": ("dst", "a", "b", "n"),
    "vmul": ("dst", "a", "b", "n", "shift"),
    "lut": ("dst", "a", "n"),
    "cell": ("dst", "a", "b", "n"),
    "move": ("dst", "a", "n"),
}


def _vector_member(cfg: HardwareConfig, name: str) -> data.FlexibleLayout:
    common = vector_layout(cfg)
    return data.FlexibleLayout(common.size, {f: common[f] for f in _VECTOR_FIELDS[name]})


def instruction_layout(cfg: HardwareConfig) -> data.StructLayout:
    """Layout of one instruction word for ``cfg``."""
    members = {"load": load_layout(cfg), "matvec": matvec_layout(cfg)}
    for name in _VECTOR_FIELDS:
        members[name] = _vector_member(cfg, name)
    return data.StructLayout({
        "op": Op,
        "flags": 4,
        "args": data.UnionLayout(members),
    })


def instr_bytes(cfg: HardwareConfig) -> int:
    return (instruction_layout(cfg).size + 7) // 8


_ARGS = {Op.END: None, Op.LOAD: "load", Op.MATVEC: "matvec", Op.VADD: "vadd", Op.VMUL: "vmul",
         Op.LUT: "lut", Op.CELL: "cell", Op.MOVE: "move"}


def encode(cfg: HardwareConfig, op: Op, flags: int = 0, **args: int) -> int:
    """The integer value of one instruction; every field is range-checked.

    Raises
    ------
    ISAError
        A field that does not fit its width (the message names ``OP.field``), missing or extra
        fields, or flag bits the operation does not define.
    """
    lay = instruction_layout(cfg)
    op = Op(op)
    if not 0 <= flags < 16:
        raise ISAError(f"{op.name}.flags={flags} does not fit 4 bits")
    bad = flags & ~_FLAGS[op.name]
    if bad:
        raise ISAError(f"{op.name}.flags={flags:#x}: bit(s) {bad:#x} are not defined for "
                       f"{op.name}")
    if op == Op.LOAD and flags & LoadFlags.PARAMS and flags & LoadFlags.LUT:
        raise ISAError("LOAD.flags: PARAMS and LUT are exclusive")
    word = op.value | (flags << 4)
    member = _ARGS[op]
    if member is None:
        if args:
            raise ISAError(f"{op.name} takes no arguments, got {sorted(args)}")
        return word
    sub = lay["args"].shape[member].shape
    base = lay["args"].offset
    names = {name for name, _ in sub}
    if set(args) != names:
        raise ISAError(f"{op.name} needs fields {sorted(names)}, got {sorted(args)}")
    for name, field in sub:
        v = args[name]
        width = field.width
        if not isinstance(v, int) or isinstance(v, bool):
            raise ISAError(f"{op.name}.{name} must be an integer, not {v!r}")
        if not 0 <= v < (1 << width):
            raise ISAError(f"{op.name}.{name}={v} does not fit {width} bits "
                           f"(configuration {cfg.digest})")
        word |= v << (base + field.offset)
    return word


def decode(cfg: HardwareConfig, word: int) -> dict:
    """Inverse of :func:`encode`: ``{"op": Op, "flags": int, **fields}``."""
    lay = instruction_layout(cfg)
    try:
        op = Op(word & 0xF)
    except ValueError:
        raise ISAError(f"unknown opcode {word & 0xF} in instruction {word:#x}") from None
    out = {"op": op, "flags": (word >> 4) & 0xF}
    member = _ARGS[op]
    if member is not None:
        sub = lay["args"].shape[member].shape
        base = lay["args"].offset
        for name, field in sub:
            out[name] = (word >> (base + field.offset)) & ((1 << field.width) - 1)
    return out


def disassemble(cfg: HardwareConfig, word: int) -> str:
    """One line of assembly for an instruction word, e.g. ``LUT.TANH dst=3 a=3 n=2``."""
    d = decode(cfg, word)
    op, flags = d.pop("op"), d.pop("flags")
    names = {Op.LOAD: {LoadFlags.PARAMS: "PARAMS", LoadFlags.LUT: "LUT"},
             Op.MATVEC: {MatvecFlags.DENSE: "DENSE"}, Op.LUT: {LutFlags.TANH: "TANH"},
             Op.MOVE: {MoveFlags.INDEXED: "INDEXED"}}.get(op, {})
    suffix = "".join(f".{n}" for bit, n in names.items() if flags & bit)
    if flags & ~sum(names):
        suffix += f".flags={flags:#x}"
    return " ".join([op.name + suffix] + [f"{k}={v}" for k, v in d.items()])


def end(cfg: HardwareConfig) -> int:
    return encode(cfg, Op.END)


def load(cfg: HardwareConfig, *, dram_addr: int, dram_len: int, count: int, dest: int,
         params: bool = False, lut: bool = False) -> int:
    flags = (LoadFlags.PARAMS if params else 0) | (LoadFlags.LUT if lut else 0)
    return encode(cfg, Op.LOAD, flags, dram_addr=dram_addr, dram_len=dram_len, count=count,
                  dest=dest)


def matvec(cfg: HardwareConfig, *, w_base: int, p_base: int, n_rows: int, n_words: int,
           in_base: int, out_base: int, dense: bool = False) -> int:
    return encode(cfg, Op.MATVEC, MatvecFlags.DENSE if dense else 0, w_base=w_base,
                  p_base=p_base, n_rows=n_rows, n_words=n_words, in_base=in_base,
                  out_base=out_base)


def vadd(cfg: HardwareConfig, *, dst: int, a: int, b: int, n: int) -> int:
    """``dst = sat_8(a + b)`` over ``n`` words."""
    return encode(cfg, Op.VADD, dst=dst, a=a, b=b, n=n)


def vmul(cfg: HardwareConfig, *, dst: int, a: int, b: int, n: int, shift: int) -> int:
    """``dst = sat_8(rshr(a * b, shift))`` over ``n`` words."""
    return encode(cfg, Op.VMUL, dst=dst, a=a, b=b, n=n, shift=shift)


def lut(cfg: HardwareConfig, *, dst: int, a: int, n: int, table: int) -> int:
    """``dst = TABLE_table[a + 128]`` over ``n`` words (``table`` 0 or 1)."""
    if table not in (0, 1):
        raise ISAError(f"LUT.table={table}: the LUT memory holds tables 0 and 1")
    return encode(cfg, Op.LUT, LutFlags.TANH if table else 0, dst=dst, a=a, n=n)


def cell(cfg: HardwareConfig, *, dst: int, a: int, b: int, n: int) -> int:
    """LSTM cell over ``n`` words of units: gates at ``a``, cell planes at ``b``, ``h`` to
    ``dst``."""
    return encode(cfg, Op.CELL, dst=dst, a=a, b=b, n=n)


def move(cfg: HardwareConfig, *, dst: int, a: int, n: int, indexed: bool = False) -> int:
    """``dst = a`` (``indexed``: ``a + ARG*n``) over ``n`` words."""
    return encode(cfg, Op.MOVE, MoveFlags.INDEXED if indexed else 0, dst=dst, a=a, n=n)


def program_bytes(cfg: HardwareConfig, words: list[int]) -> bytes:
    n = instr_bytes(cfg)
    return b"".join(w.to_bytes(n, "little") for w in words)


def program_words(cfg: HardwareConfig, blob: bytes) -> list[int]:
    n = instr_bytes(cfg)
    if len(blob) % n:
        raise ISAError(f"program of {len(blob)} bytes is not a whole number of {n}-byte instructions")
    return [int.from_bytes(blob[i:i + n], "little") for i in range(0, len(blob), n)]
