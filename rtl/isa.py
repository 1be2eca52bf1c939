"""The accelerator's instruction set: encoding (``amaranth.lib.data`` layouts built from the
:class:`~rtl.config.HardwareConfig`) and semantics.

An instruction word is ``op`` (4 bits), ``flags`` (4 bits) and an ``args`` union whose member is
chosen by ``op``. Every field width follows from the configuration (address widths of the
memories it names), so the instruction word of a bigger configuration is wider; programs are
stored ``instr_bytes(cfg)`` bytes per instruction, little-endian.

Semantics (one instruction at a time; the controller fetches the next when the previous is done):

``END``
    Stop; the accelerator raises ``done`` and waits for the next ``start``.
``LOAD`` (``flags.params = 0``: weights)
    Stream ``dram_len`` DRAM words from ``dram_addr`` through the decompressor: the stream holds
    ``count`` compressed weight words *per lane*, lane 0 first. Lane ``l``'s ``i``-th word is
    rebuilt (zeros filled back in) and written to its weight SRAM at ``dest + i``.
``LOAD`` (``flags.params = 1``: per-row parameters)
    Same stream, but ``count`` 16-byte parameter records per lane go to the lanes' parameter
    memories at ``dest + i``.
``MATVEC`` (``flags.dense = 1`` disables zero skipping)
    Every lane runs ``n_rows`` row slots; slot ``i`` multiplies the weight words
    ``w_base + i*n_words .. + n_words - 1`` with the activation words ``in_base ..
    in_base + n_words - 1``, adds the slot's bias, requantizes with its multiplier and shift
    (see :mod:`rtl.memfmt`) and, if the slot's ``write`` flag is set, stores the int8 result at
    activation element ``out_base*K + out_index``. Done when every result is written.
"""

from __future__ import annotations

from amaranth.lib import data, enum

from .config import HardwareConfig

__all__ = ["Op", "LoadFlags", "MatvecFlags", "instruction_layout", "instr_bytes", "encode",
           "decode", "end", "load", "matvec", "ISAError", "program_bytes", "program_words"]


class ISAError(ValueError):
    """An instruction that cannot be encoded for this configuration."""


class Op(enum.Enum, shape=4):
    END = 0
    LOAD = 1
    MATVEC = 2


class LoadFlags:
    PARAMS = 1


class MatvecFlags:
    DENSE = 1


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


def instruction_layout(cfg: HardwareConfig) -> data.StructLayout:
    """Layout of one instruction word for ``cfg``."""
    return data.StructLayout({
        "op": Op,
        "flags": 4,
        "args": data.UnionLayout({"load": load_layout(cfg), "matvec": matvec_layout(cfg)}),
    })


def instr_bytes(cfg: HardwareConfig) -> int:
    return (instruction_layout(cfg).size + 7) // 8


_ARGS = {Op.LOAD: "load", Op.MATVEC: "matvec", Op.END: None}


def encode(cfg: HardwareConfig, op: Op, flags: int = 0, **args: int) -> int:
    """The integer value of one instruction; every field is range-checked."""
    lay = instruction_layout(cfg)
    if not 0 <= flags < 16:
        raise ISAError(f"flags must fit 4 bits, not {flags}")
    word = Op(op).value | (flags << 4)
    member = _ARGS[Op(op)]
    if member is None:
        if args:
            raise ISAError(f"{Op(op).name} takes no arguments, got {sorted(args)}")
        return word
    sub = lay["args"].shape[member].shape
    base = lay["args"].offset
    names = {name for name, _ in sub}
    if set(args) != names:
        raise ISAError(f"{Op(op).name} needs fields {sorted(names)}, got {sorted(args)}")
    for name, field in sub:
        v = args[name]
        width = field.width
        if not 0 <= v < (1 << width):
            raise ISAError(f"{Op(op).name}.{name}={v} does not fit {width} bits "
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


def end(cfg: HardwareConfig) -> int:
    return encode(cfg, Op.END)


def load(cfg: HardwareConfig, *, dram_addr: int, dram_len: int, count: int, dest: int,
         params: bool = False) -> int:
    return encode(cfg, Op.LOAD, LoadFlags.PARAMS if params else 0, dram_addr=dram_addr,
                  dram_len=dram_len, count=count, dest=dest)


def matvec(cfg: HardwareConfig, *, w_base: int, p_base: int, n_rows: int, n_words: int,
           in_base: int, out_base: int, dense: bool = False) -> int:
    return encode(cfg, Op.MATVEC, MatvecFlags.DENSE if dense else 0, w_base=w_base,
                  p_base=p_base, n_rows=n_rows, n_words=n_words, in_base=in_base,
                  out_base=out_base)


def program_bytes(cfg: HardwareConfig, words: list[int]) -> bytes:
    n = instr_bytes(cfg)
    return b"".join(w.to_bytes(n, "little") for w in words)


def program_words(cfg: HardwareConfig, blob: bytes) -> list[int]:
    n = instr_bytes(cfg)
    if len(blob) % n:
        raise ISAError(f"program of {len(blob)} bytes is not a whole number of {n}-byte instructions")
    return [int.from_bytes(blob[i:i + n], "little") for i in range(0, len(blob), n)]
