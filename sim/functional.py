"""Backend ``functional``: the accelerator as a pure numpy model, one instruction at a time.

The functional model holds the accelerator's memories (DRAM, instruction memory, activation
SRAM, per-lane weight SRAM and parameter memory, the LUT memory, the ``ARG`` register) and
executes programs with exactly the semantics of :mod:`rtl.isa` and the formats of
:mod:`rtl.memfmt`: every value it writes is the value the RTL must write. It is the fast
simulator beside the cycle-accurate ones (TVM's VTA "fsim" beside its RTL): a whole utterance of
the default model runs in seconds, so it is what the host program, the compiler and the
integer reference are developed and checked against before an HDL simulator is started.

Values (exact)
--------------
* ``LOAD`` parses the DRAM stream as :func:`rtl.decompressor.reference_load` does: records
  back to back from ``dram_addr`` (addresses wrapping at ``dram_depth``), only the
  ``dram_len`` words the command names, a record taken only when all its bytes are there (a
  stream that runs dry leaves the remaining records unwritten), record ``n`` to lane
  ``n // count`` at ``(dest + n % count)`` modulo the target memory. Weight records are
  rebuilt to dense words (zeros filled back in), parameter records decoded as
  :func:`rtl.memfmt.param_record_layout`, LUT records (``flags.LUT``) copied to LUT rows.
* ``MATVEC``: per lane and row slot ``acc = sum w*x`` modulo ``2**acc_bits``, ``t =
  wrap(acc + bias)``, ``y = sat_8(rshr(t * mult, shift))`` (no rounding for ``shift = 0``),
  written to element ``(out_base*K + out_index) % (act_depth*K)`` when the slot's ``write``
  bit is set.
* ``VADD``, ``VMUL``, ``LUT``, ``CELL``, ``MOVE``: the formulas of :mod:`rtl.isa`.

Behaviour the ISA leaves undefined (a MATVEC writing into its own input words or writing one
element twice, a vector instruction whose destination partly overlaps a source, ``CELL``
operands that overlap) raises :class:`FunctionalError` naming the instruction (``strict``,
the default): the compiler never emits such code, and the RTL may do anything there.

Cycles (an analytical estimate, *not* cycle-accurate)
-----------------------------------------------------
:meth:`FunctionalDriver.run` returns ``1 + sum over the executed instructions of (2 +
unit)``: the controller's cycle to leave idle, its fetch and decode per instruction
(:class:`rtl.controller.Controller`), and the unit's own cycles:

``END``     0
``LOAD``    exact: the cycles from ``start`` until the decompressor's ``busy`` falls,
            ``dram_len + 4`` when every record is at least ``B`` bytes and the last record
            ends in the last word (:class:`rtl.decompressor.Decompressor`'s timing contract),
            otherwise :func:`rtl.decompressor.reference_load` (cycle for cycle)
``MATVEC``  each row slot issues for :func:`rtl.mac_lane.issue_cycles` of its words' pair
            counts ``p`` (nonzero weight *and* activation; all ``K`` with ``DENSE``): ``M``
            pairs per cycle from the held rest of one word and the next word of the row,
            at least one cycle per word; a lane's slots back to back; a written row
            completes when its lane has issued it, the output arbiter writes
            ``result_ports`` results per cycle in completion order, and the unit is done
            :data:`MATVEC_LATENCY` cycles after the last write (or the last lane's last
            issue). On the Amaranth simulation of ``rtl.top.Accelerator`` (tiny config, six
            layers, sparse and dense; five variants of lanes, ``M`` and ``result_ports``)
            and, checked by hand, on Verilator (default config, four RNN-T-sized layers)
            this equals the measured cycles
vector      exact: :func:`rtl.vector.unit_cycles` (one activation-SRAM read per cycle:
            ``2n + 3`` for ``VADD``/``VMUL``, ``n + 3`` for ``MOVE``, ``n + 4`` for ``LUT``,
            ``6n + 5`` for ``CELL``; ``2`` for ``n = 0``), the timing of
            :class:`rtl.vector.VectorUnit`

Counters: those of :data:`rtl.top.COUNTERS` that the model can know exactly (``dram_bytes``,
``wsram_reads``, ``act_reads``, ``macs``, ``skip_zero_w``, ``skip_zero_a``) are exact;
``cycles``, ``load_cycles``, ``matvec_cycles`` follow the estimate above (the class counters
count decode plus unit cycles, like ``Controller.in_load``); ``cycles`` also advances by one
per host-port word, as the RTL's free-running counter does. Per instruction class there are
``instr_<op>`` (instructions executed) and ``vector_cycles`` (decode plus unit cycles of the
vector instructions); ``host_words`` counts host-port words. ``lane_busy`` is each lane's issue
cycles; ``lane_stall`` is not modelled (always 0).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

import numpy as np

from rtl import isa
from rtl.config import PARAM_RECORD_BYTES, HardwareConfig
from rtl.decompressor import reference_load
from rtl.mac_lane import issue_cycles
from rtl.vector import unit_cycles

from .driver import DEFAULT_RUN_TIMEOUT_CYCLES, Driver, DriverError

__all__ = ["FunctionalBackend", "FunctionalDriver", "FunctionalMachine", "FunctionalError",
           "COUNTERS", "MATVEC_LATENCY", "decode_weight_stream",
           "run_host"]

#: Cycles a MATVEC takes beyond its busiest lane's issue cycles (pipeline fill and drain:
#: reads, multiply, the four requantization stages, the output queue and arbiter). Measured on
#: the Amaranth simulation of ``rtl.top.Accelerator`` (tiny config): 10 or 11.
MATVEC_LATENCY = 10
_VECTOR_OPS = ("VADD", "VMUL", "LUT", "CELL", "MOVE")

#: The counters :class:`FunctionalDriver` keeps: :data:`rtl.top.COUNTERS`, then the class
#: counters the RNN-T programs need (``vector_cycles``, ``instr_<op>``) and ``host_words``.
COUNTERS = ("cycles", "load_cycles", "matvec_cycles", "dram_bytes", "wsram_reads", "act_reads",
            "macs", "skip_zero_w", "skip_zero_a", "vector_cycles", "host_words",
            *(f"instr_{op.name.lower()}" for op in isa.Op))


class FunctionalError(DriverError):
    """A program does something the hardware leaves undefined (see the module docstring)."""


# -- LOAD: the stream parser ------------------------------------------------------------------

def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _record_starts(cfg: HardwareConfig, stream: bytes, total: int, params: bool):
    """Start offsets and sizes of the records the decompressor takes from ``stream`` (at most
    ``total``; fewer if the stream runs dry before a record is complete)."""
    if params:
        n = min(total, len(stream) // PARAM_RECORD_BYTES)
        starts = np.arange(n, dtype=np.int64) * PARAM_RECORD_BYTES
        return starts, np.full(n, PARAM_RECORD_BYTES, dtype=np.int64)
    kb, wb = cfg.bitmap_bytes, cfg.weight_bits
    starts, sizes = [], []
    pos, end = 0, len(stream)
    for _ in range(total):
        if pos + kb > end:
            break
        nnz = int.from_bytes(stream[pos:pos + kb], "little").bit_count()
        size = kb + (nnz * wb + 7) // 8
        if pos + size > end:
            break
        starts.append(pos)
        sizes.append(size)
        pos += size
    return np.array(starts, dtype=np.int64), np.array(sizes, dtype=np.int64)


def decode_weight_stream(cfg: HardwareConfig, stream: bytes, starts: np.ndarray) -> np.ndarray:
    """Dense words ``int8 [N, K]`` of the compressed weight records at byte offsets ``starts``
    (vectorised; :func:`compiler.compress.decompress_stream` is the naive golden decoder)."""
    K, wb, kb = cfg.k, cfg.weight_bits, cfg.bitmap_bytes
    N = len(starts)
    out = np.zeros((N, K), dtype=np.int8)
    if N == 0:
        return out
    buf = np.frombuffer(stream, dtype=np.uint8)
    bitmap = buf[starts[:, None] + np.arange(kb)]                       # [N, K/8]
    nz = np.unpackbits(bitmap, axis=1, bitorder="little").astype(bool)  # [N, K]
    wi, ki = np.nonzero(nz)                                             # word-major, k ascending
    j = (np.cumsum(nz, axis=1) - 1)[nz]                                 # index among nonzeros
    per_byte = 8 // wb
    byte = buf[starts[wi] + kb + j // per_byte].astype(np.int64)
    val = (byte >> (wb * (j % per_byte))) & ((1 << wb) - 1)
    val = np.where(val >= 1 << (wb - 1), val - (1 << wb), val)
    out[wi, ki] = val
    return out


_PARAM_DTYPE = np.dtype([("bias", "<i4"), ("mult", "<u4"), ("shift", "u1"), ("flags", "u1"),
                         ("out_index", "<u2"), ("reserved", "V4")])


@dataclass
class _Load:
    """A decoded LOAD: what it writes (``lanes``, ``addrs``, ``values``) and its timing."""

    lanes: np.ndarray
    addrs: np.ndarray
    values: object          # int8 [N, K] words, a structured param array, or uint8 [N, 16]
    cycles: int
    dram_reads: int


#: Decoded LOADs, keyed by (config digest, mode, stream hash, count, dest): a streamed-weights
#: program reloads the same matrices every step.
_LOAD_CACHE: dict = {}
_LOAD_CACHE_MAX = 256


def _load_timing(cfg: HardwareConfig, stream: bytes, *, n_records: int, sizes, params: bool,
                 lanes_cfg: HardwareConfig, count: int, dram_len: int) -> tuple[int, int]:
    """(cycles, DRAM words read) of one LOAD: the closed form where the decompressor's timing
    contract gives it, otherwise :func:`reference_load`."""
    B = cfg.dram_bytes_per_cycle
    total = count * lanes_cfg.lanes
    if (count > 0 and n_records == total and len(sizes) and int(sizes.min()) >= B
            and _ceil_div(int(sizes.sum()), B) == dram_len):
        return dram_len + 4, dram_len
    words = [int.from_bytes(stream[i:i + B], "little") for i in range(0, len(stream), B)]
    tr = reference_load(lanes_cfg, words, dram_addr=0, dram_len=len(words), count=count, dest=0,
                        params=params)
    return tr.cycles, tr.dram_reads


def _decode_load(cfg: HardwareConfig, stream: bytes, *, count: int, dest: int, mode: str,
                 dram_len: int) -> _Load:
    key = (cfg.digest, mode, hashlib.sha1(stream).digest(), count, dest)
    hit = _LOAD_CACHE.get(key)
    if hit is not None:
        return hit
    if mode == "lut":
        lanes_cfg, total, params = cfg.replace(lanes=1), count, True
    else:
        lanes_cfg, total, params = cfg, count * cfg.lanes, mode == "params"
    starts, sizes = _record_starts(cfg, stream, total, params)
    n = len(starts)
    idx = np.arange(n, dtype=np.int64)
    if mode == "lut":
        lanes = np.zeros(n, dtype=np.int64)
        addrs = (dest + idx) % isa.LUT_ROWS
        buf = np.frombuffer(stream, dtype=np.uint8)
        values = buf[starts[:, None] + np.arange(PARAM_RECORD_BYTES)].copy()
    else:
        tgt_mask = (1 << max(cfg.wsram_addr_bits, cfg.param_addr_bits)) - 1
        lanes = idx // count if count else idx
        addrs = (dest + idx % count) & tgt_mask if count else idx
        if mode == "params":
            raw = b"".join(stream[s:s + PARAM_RECORD_BYTES] for s in starts.tolist())
            values = np.frombuffer(raw, dtype=_PARAM_DTYPE).copy()
        else:
            values = decode_weight_stream(cfg, stream, starts)
    cycles, reads = _load_timing(cfg, stream, n_records=n, sizes=sizes, params=params,
                                 lanes_cfg=lanes_cfg, count=count, dram_len=dram_len)
    ld = _Load(lanes, addrs, values, cycles, reads)
    if len(_LOAD_CACHE) >= _LOAD_CACHE_MAX:
        _LOAD_CACHE.pop(next(iter(_LOAD_CACHE)))
    _LOAD_CACHE[key] = ld
    return ld


# -- the machine ------------------------------------------------------------------------------

def _sat(x: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _rshr(x: np.ndarray, s) -> np.ndarray:
    """``rshr(x, s)`` on int64 arrays for any shift ``s >= 0`` (elementwise or scalar): ``(x >>
    s) + bit s-1 of x``, which equals ``(x + 2**(s-1)) >> s`` without the overflow; ``s = 0``
    is no rounding. Shifts beyond 63 act as 63 (``|x| < 2**63``)."""
    s = np.asarray(s, dtype=np.int64)
    hi = np.minimum(s, 63)
    lo = np.minimum(np.maximum(s - 1, 0), 63)
    return np.where(s > 0, (x >> hi) + ((x >> lo) & 1), x)


def _rshr_int(x: int, s: int) -> int:
    return (x + (1 << (s - 1))) >> s if s > 0 else x


class FunctionalMachine:
    """The accelerator's state and one-instruction-at-a-time execution (no host timing).

    Attributes
    ----------
    dram : numpy.ndarray, ``uint8 [dram_depth, B]``
    imem : numpy.ndarray, ``object [imem_depth]`` (Python ints: instruction words)
    act : numpy.ndarray, ``int8 [act_depth, K]``
    wsram : numpy.ndarray, ``int8 [L, wsram_depth, K]`` (dense weights)
    pmem : numpy.ndarray, structured ``[L, param_depth]`` (``bias``, ``mult``, ``shift``,
        ``flags``, ``out_index``)
    lut : numpy.ndarray, ``int8 [LUT_TABLES, 256]``
    arg : int
        The ``ARG`` register.
    counters : dict
    pc_cycles : dict[int, int]
        Estimated cycles spent in each instruction (fetch, decode and unit), by pc, summed
        over every run: what per-layer cycle reports add up (each run's cycle to leave idle
        is in no pc).
    strict : bool
        Raise :class:`FunctionalError` on undefined behaviour.
    """

    def __init__(self, cfg: HardwareConfig, *, strict: bool = True):
        if not isinstance(cfg, HardwareConfig):
            raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
        if cfg.weight_bits not in (4, 8) or cfg.act_bits != 8:
            raise ValueError("the functional model supports 4/8-bit weights, 8-bit activations")
        self.cfg = cfg
        self.strict = strict
        L, K = cfg.lanes, cfg.k
        self.dram = np.zeros((cfg.dram_depth, cfg.dram_bytes_per_cycle), dtype=np.uint8)
        self.imem = np.zeros(cfg.imem_depth, dtype=object)
        self.act = np.zeros((cfg.act_depth, K), dtype=np.int8)
        self.wsram = np.zeros((L, cfg.wsram_depth, K), dtype=np.int8)
        self.pmem = np.zeros((L, cfg.param_depth), dtype=_PARAM_DTYPE)
        self.lut = np.zeros((isa.LUT_TABLES, isa.LUT_ENTRIES), dtype=np.int8)
        self.arg = 0
        self.counters = {name: 0 for name in COUNTERS}
        self.lane_busy = [0] * L
        self.lane_stall = [0] * L
        self.pc_cycles: dict[int, int] = {}
        self._decoded: dict[int, dict] = {}
        self._mv_cache: dict = {}

    # -- helpers ----------------------------------------------------------------------------

    def _words(self, base: int, n: int) -> np.ndarray:
        return (base + np.arange(n, dtype=np.int64)) % self.cfg.act_depth

    def _hazard(self, pc: int, d: dict, msg: str) -> None:
        if self.strict:
            raise FunctionalError(f"pc {pc}: {isa.disassemble(self.cfg, self._word_of(pc))}: "
                                  f"{msg} (undefined on the hardware)")

    def _word_of(self, pc: int) -> int:
        return int(self.imem[pc])

    def _check_vector_overlap(self, pc, d, dst, n_dst, sources):
        D = self.cfg.act_depth
        out = set(self._words(dst, n_dst).tolist())
        for name, base, n in sources:
            src = set(self._words(base, n).tolist())
            if out & src and not (base % D == dst % D and n == n_dst):
                self._hazard(pc, d, f"destination words {dst}..{dst + n_dst - 1} partly overlap "
                                    f"source {name} words {base}..{base + n - 1}")

    def decode(self, pc: int) -> dict:
        word = int(self.imem[pc])
        d = self._decoded.get(word)
        if d is None:
            d = isa.decode(self.cfg, word)
            self._decoded[word] = d
        return d

    # -- execution --------------------------------------------------------------------------

    def execute(self, pc: int, *, arg: int = 0, max_cycles: int = DEFAULT_RUN_TIMEOUT_CYCLES
                ) -> dict:
        """Run from ``pc`` to ``END``; returns ``{"cycles", "instructions": {op: n},
        "class_cycles": {op: cycles}, "trace": [(pc, op)]}`` (cycles: the estimate)."""
        cfg = self.cfg
        self.arg = int(arg)
        cycles = 1
        per_op: dict[str, int] = {}
        per_op_cycles: dict[str, int] = {}
        trace = []
        while True:
            try:
                d = self.decode(pc)
            except isa.ISAError:
                cycles += 2
                self.counters["cycles"] += cycles
                raise DriverError(f"run: the accelerator stopped with fault set (unknown opcode "
                                  f"{int(self.imem[pc]) & 0xF} at pc {pc}) after {cycles} "
                                  f"cycles") from None
            op = d["op"]
            trace.append((pc, op.name))
            if op == isa.Op.END:
                unit = 0
            else:
                unit = getattr(self, f"_op_{op.name.lower()}")(pc, d)
            cycles += 2 + unit
            self.pc_cycles[pc] = self.pc_cycles.get(pc, 0) + 2 + unit
            per_op[op.name] = per_op.get(op.name, 0) + 1
            per_op_cycles[op.name] = per_op_cycles.get(op.name, 0) + 2 + unit
            self.counters[f"instr_{op.name.lower()}"] += 1
            cls = {"LOAD": "load_cycles", "MATVEC": "matvec_cycles"}.get(
                op.name, "vector_cycles" if op.name in _VECTOR_OPS else None)
            if cls:
                self.counters[cls] += 1 + unit
            if op == isa.Op.END:
                break
            if cycles > max_cycles:
                self.counters["cycles"] += cycles
                raise DriverError(f"run: done did not rise within {max_cycles} cycles "
                                  f"(estimated; pc {pc})")
            pc = (pc + 1) % cfg.imem_depth
        self.counters["cycles"] += cycles
        return {"cycles": cycles, "instructions": per_op, "class_cycles": per_op_cycles,
                "trace": trace}

    def _op_load(self, pc: int, d: dict) -> int:
        cfg = self.cfg
        flags = d["flags"]
        mode = ("lut" if flags & isa.LoadFlags.LUT else
                "params" if flags & isa.LoadFlags.PARAMS else "weights")
        idx = (d["dram_addr"] + np.arange(d["dram_len"], dtype=np.int64)) % cfg.dram_depth
        stream = self.dram[idx].tobytes()
        ld = _decode_load(cfg, stream, count=d["count"], dest=d["dest"], mode=mode,
                          dram_len=d["dram_len"])
        if mode != "lut":
            self._mv_cache.clear()
        if mode == "weights":
            self.wsram[ld.lanes, ld.addrs % cfg.wsram_depth] = ld.values
        elif mode == "params":
            self.pmem[ld.lanes, ld.addrs % cfg.param_depth] = ld.values
        else:
            flat = self.lut.reshape(isa.LUT_ROWS, isa.LUT_ROW_BYTES)
            flat[ld.addrs] = ld.values.view(np.int8)
        self.counters["dram_bytes"] += ld.dram_reads * cfg.dram_bytes_per_cycle
        return ld.cycles

    def _matvec_operands(self, d: dict):
        """The weights and parameters a MATVEC reads, prepared once per (bases, sizes) until a
        LOAD writes the memory again: float64 weights (exact: ``|acc| < 2**53``), the nonzero
        masks, the parameter arrays."""
        cfg = self.cfg
        K, L = cfg.k, cfg.lanes
        S, W = d["n_rows"], d["n_words"]
        key = (d["w_base"], d["p_base"], S, W)
        hit = self._mv_cache.get(key)
        if hit is not None:
            return hit
        widx = (d["w_base"] + np.arange(S * W, dtype=np.int64)) % cfg.wsram_depth
        w = self.wsram[:, widx, :].reshape(L, S, W * K)
        wnz = (w != 0).reshape(L, S, W, K)
        p = self.pmem[:, (d["p_base"] + np.arange(S, dtype=np.int64)) % cfg.param_depth]
        write = (p["flags"] & 1).astype(bool)
        ops = {
            "w": w.astype(np.float64), "wnz": wnz.astype(np.float32), "nnz": int(wnz.sum()),
            "bias": p["bias"].astype(np.int64), "mult": p["mult"].astype(np.int64),
            "shift": p["shift"].astype(np.int64), "write": write,
            "out_index": p["out_index"].astype(np.int64)[write],
        }
        self._mv_cache[key] = ops
        return ops

    def _op_matvec(self, pc: int, d: dict) -> int:
        cfg = self.cfg
        K, L, M = cfg.k, cfg.lanes, cfg.m
        S, W = d["n_rows"], d["n_words"]
        dense = bool(d["flags"] & isa.MatvecFlags.DENSE)
        ops = self._matvec_operands(d)
        aw = self._words(d["in_base"], W)
        x = self.act[aw].reshape(W * K)
        acc = (ops["w"] @ x.astype(np.float64)).astype(np.int64)        # [L, S], exact
        ab = cfg.acc_bits
        t = (acc + ops["bias"] + (1 << (ab - 1))) % (1 << ab) - (1 << (ab - 1))
        write = ops["write"]
        tw, mw, sw = t[write], ops["mult"][write], ops["shift"][write]
        if len(mw) and int(mw.max()) >= 1 << 31:
            # |t * mult| may reach 2**63: exact Python integers (never for compiled images,
            # whose multipliers are below 2**31)
            y = np.array([_rshr_int(int(a) * int(b), int(c)) for a, b, c in zip(tw, mw, sw)],
                         dtype=np.int64).clip(-128, 127)
        else:
            y = _sat(_rshr(tw * mw, sw), 8)
        we = (d["out_base"] * K + ops["out_index"]) % (cfg.act_depth * K)
        if self.strict and len(we):
            if len(np.unique(we)) != len(we):
                self._hazard(pc, d, "two row slots write the same element")
            if np.isin(we // K, aw).any():
                self._hazard(pc, d, f"writes into its input words {d['in_base']}.."
                                    f"{d['in_base'] + W - 1}")
        self.act.reshape(-1)[we] = y.astype(np.int8)
        # statistics
        anz = (x != 0).reshape(W, K).astype(np.float32)
        pairs = np.einsum("lswk,wk->lsw", ops["wnz"], anz).astype(np.int64)   # [L, S, W]
        total = L * S * W * K
        nnz = ops["nnz"]
        nonzero = int(pairs.sum())
        if dense:
            slot_issue = np.full((L, S), int(issue_cycles([K] * W, M)), dtype=np.int64)
            self.counters["macs"] += total
        else:
            slot_issue = issue_cycles(np.moveaxis(pairs, 2, 0), M)       # [L, S]
            self.counters["macs"] += nonzero
            self.counters["skip_zero_w"] += total - nnz
            self.counters["skip_zero_a"] += nnz - nonzero
        self.counters["wsram_reads"] += L * S * W
        self.counters["act_reads"] += L * S * W
        issue = slot_issue.sum(axis=1)
        for lane in range(L):
            self.lane_busy[lane] += int(issue[lane])
            self.lane_stall[lane] += 1 if S and W else 0      # the first read's latency
        return _matvec_unit_cycles(slot_issue, write, cfg.result_write_ports)

    def _read(self, base: int, n: int) -> np.ndarray:
        return self.act[self._words(base, n)].astype(np.int64)

    def _write(self, base: int, values: np.ndarray) -> None:
        self.act[self._words(base, len(values))] = values.astype(np.int8)

    def _op_vadd(self, pc, d):
        n = d["n"]
        self._check_vector_overlap(pc, d, d["dst"], n, [("a", d["a"], n), ("b", d["b"], n)])
        self._write(d["dst"], _sat(self._read(d["a"], n) + self._read(d["b"], n), 8))
        return unit_cycles(isa.Op.VADD, n)

    def _op_vmul(self, pc, d):
        n = d["n"]
        self._check_vector_overlap(pc, d, d["dst"], n, [("a", d["a"], n), ("b", d["b"], n)])
        prod = self._read(d["a"], n) * self._read(d["b"], n)
        self._write(d["dst"], _sat(_rshr(prod, d["shift"]), 8))
        return unit_cycles(isa.Op.VMUL, n)

    def _op_lut(self, pc, d):
        n = d["n"]
        self._check_vector_overlap(pc, d, d["dst"], n, [("a", d["a"], n)])
        table = self.lut[1 if d["flags"] & isa.LutFlags.TANH else 0]
        self._write(d["dst"], table[self._read(d["a"], n) + 128])
        return unit_cycles(isa.Op.LUT, n)

    def _op_move(self, pc, d):
        n = d["n"]
        src = d["a"] + (self.arg * n if d["flags"] & isa.MoveFlags.INDEXED else 0)
        self._check_vector_overlap(pc, d, d["dst"], n, [("source", src, n)])
        self._write(d["dst"], self._read(src, n))
        return unit_cycles(isa.Op.MOVE, n)

    def _op_cell(self, pc, d):
        n, a, b, dst = d["n"], d["a"], d["b"], d["dst"]
        D = self.cfg.act_depth
        gates = set(self._words(a, 4 * n).tolist())
        planes = set(self._words(b, 2 * n).tolist())
        hout = set(self._words(dst, n).tolist())
        if gates & planes or hout & gates or hout & planes:
            self._hazard(pc, d, f"operands overlap (h {dst}+{n}, gates {a}+{4 * n}, "
                                f"cell {b}+{2 * n}, act_depth {D})")
        if n == 0:
            return unit_cycles(isa.Op.CELL, 0)
        g = self._read(a, 4 * n).reshape(4, n, -1)
        i, f, gg, o = g[0], g[1], g[2], g[3]
        lo = self._read(b, n)
        hi = self._read(b + n, n)
        c = hi * 256 + (lo & 0xFF)
        c = _sat(_rshr(f * c, 7) + _rshr(i * gg, 3), 16)
        tc = self.lut[isa.LUT_TANH].astype(np.int64)[_sat(_rshr(c, 6), 8) + 128]
        h = _sat(_rshr(o * tc, 7), 8)
        lo_new = ((c & 0xFF) ^ 0x80) - 0x80
        self._write(b, np.concatenate([lo_new, c >> 8]))
        self._write(dst, h)
        return unit_cycles(isa.Op.CELL, n)


def _matvec_unit_cycles(slot_issue: np.ndarray, write: np.ndarray, ports: int = 1) -> int:
    """Estimated MATVEC unit cycles: each written row completes when its lane has issued it
    (cumulative issue cycles, ``[L, S]``); the output arbiter writes ``ports`` results per
    cycle in completion order (``t_i = max(t_{i-ports} + 1, c_i)``, i.e. ``t_i = max over
    j >= 0 of c_{i - j*ports} + j``); plus :data:`MATVEC_LATENCY`."""
    done = np.cumsum(slot_issue, axis=1)[write]
    if not len(done):
        last = int(slot_issue.sum(axis=1).max()) if slot_issue.size else 0
        return last + MATVEC_LATENCY
    c = np.sort(done)
    n = len(c)
    # per residue class r of i mod ports: t over the subsequence c[r::ports] is the
    # one-server recurrence, whose last element is max_k(c_k - k) + count - 1
    t_last = max(int((c[r::ports] - np.arange(len(c[r::ports]))).max()) + len(c[r::ports]) - 1
                 for r in range(min(ports, n)))
    return max(t_last, int(slot_issue.sum(axis=1).max())) + MATVEC_LATENCY


# -- the driver -------------------------------------------------------------------------------

class FunctionalDriver(Driver):
    """:class:`~sim.driver.Driver` on a :class:`FunctionalMachine`.

    Host transfers cost no time; each host-port word advances the ``cycles`` counter by one
    (as on the RTL), DRAM and instruction-memory writes are backdoor loads (zero cycles).
    :meth:`run` returns the estimated cycles (module docstring); :attr:`last_run` holds the
    per-instruction-class counts and cycles of the last run.
    """

    def __init__(self, cfg: HardwareConfig, *, strict: bool = True,
                 run_timeout_cycles: int = DEFAULT_RUN_TIMEOUT_CYCLES):
        self.cfg = cfg
        self.counter_names = COUNTERS
        self.machine = FunctionalMachine(cfg, strict=strict)
        self.run_timeout_cycles = run_timeout_cycles
        self.last_run: dict | None = None
        self.stats = {"runs": 0, "run_cycles": 0, "instructions": 0, "host_words": 0,
                      "dram_access": "backdoor"}

    def _host_words(self, n: int) -> None:
        self.machine.counters["host_words"] += n
        self.machine.counters["cycles"] += n
        self.stats["host_words"] += n

    async def write_dram(self, words, base=0):
        cfg = self.cfg
        self._check_range("write_dram", base, len(words), cfg.dram_depth)
        words = self._check_words("write_dram", words, cfg.dram_word_bits)
        B = cfg.dram_bytes_per_cycle
        raw = b"".join(w.to_bytes(B, "little") for w in words)
        self.machine.dram[base:base + len(words)] = np.frombuffer(raw, np.uint8).reshape(-1, B)

    async def write_imem(self, words, base=0):
        cfg = self.cfg
        self._check_range("write_imem", base, len(words), cfg.imem_depth)
        words = self._check_words("write_imem", words, isa.instruction_layout(cfg).size)
        for i, w in enumerate(words):
            self.machine.imem[base + i] = w

    async def write_act(self, base, words):
        cfg = self.cfg
        self._check_range("write_act", base, len(words), cfg.act_depth)
        words = self._check_words("write_act", words, cfg.aword_bits)
        K = cfg.k
        raw = b"".join(w.to_bytes(K, "little") for w in words)
        self.machine.act[base:base + len(words)] = np.frombuffer(raw, np.int8).reshape(-1, K)
        self._host_words(len(words))

    async def read_act(self, base, n):
        self._check_range("read_act", base, n, self.cfg.act_depth)
        rows = self.machine.act[base:base + n]
        self._host_words(n)
        return [int.from_bytes(r.tobytes(), "little") for r in rows]

    async def run(self, pc, arg=0):
        cfg = self.cfg
        if not 0 <= pc < cfg.imem_depth:
            raise DriverError(f"run: pc {pc} outside the instruction memory of "
                              f"{cfg.imem_depth} words")
        if not 0 <= arg < cfg.act_depth:
            raise DriverError(f"run: arg {arg} does not fit the {cfg.act_addr_bits}-bit ARG "
                              f"register")
        res = self.machine.execute(pc, arg=arg, max_cycles=self.run_timeout_cycles)
        self.last_run = res
        self.stats["runs"] += 1
        self.stats["run_cycles"] += res["cycles"]
        self.stats["instructions"] += sum(res["instructions"].values())
        return res["cycles"]

    async def counters(self):
        mod = 1 << self.cfg.counter_bits
        m = self.machine
        out = {n: m.counters[n] % mod for n in self.counter_names}
        out["lane_busy"] = [v % mod for v in m.lane_busy]
        out["lane_stall"] = [v % mod for v in m.lane_stall]
        return out


class FunctionalBackend:
    """Runs host routines on the functional model, in this process (no build, no waves).

    Parameters
    ----------
    cfg : HardwareConfig
    strict : bool
        Raise :class:`FunctionalError` on behaviour the hardware leaves undefined.
    run_timeout_cycles : int
        Bound on the (estimated) cycles of each run.

    Attributes
    ----------
    stats : dict
        After :meth:`run`: ``runs``, ``run_cycles``, ``instructions``, ``host_words``,
        ``routine_seconds``, ``sim_seconds``, ``final_cycles``.
    driver : FunctionalDriver or None
        The driver of the last :meth:`run` (its machine holds the final memory contents).
    """

    name = "functional"

    def __init__(self, cfg: HardwareConfig, *, strict: bool = True,
                 run_timeout_cycles: int = DEFAULT_RUN_TIMEOUT_CYCLES):
        self.cfg = cfg
        self.strict = strict
        self.run_timeout_cycles = run_timeout_cycles
        self.stats: dict = {}
        self.driver: FunctionalDriver | None = None

    def run(self, routine, *, waves=None, gtkw=None):
        """Run ``routine(driver)`` (any callable returning an awaitable); return its result."""
        if waves is not None or gtkw is not None:
            raise ValueError("the functional backend has no signals to trace: waves need an "
                             "HDL simulator (amaranth, verilator, icarus)")
        driver = FunctionalDriver(self.cfg, strict=self.strict,
                                  run_timeout_cycles=self.run_timeout_cycles)
        self.driver = driver

        async def main():
            return await routine(driver)

        t0 = time.perf_counter()
        try:
            result = _run_coroutine(main())
        finally:
            wall = time.perf_counter() - t0
            self.stats = dict(driver.stats, routine_seconds=wall, sim_seconds=wall,
                              final_cycles=driver.machine.counters["cycles"])
        return result


def _run_coroutine(coro):
    """``asyncio.run``, or in a helper thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()


def run_host(cfg: HardwareConfig, routine, *, waves=None, gtkw=None, **options):
    """Run ``routine(driver)`` on the functional model; see :meth:`FunctionalBackend.run`."""
    return FunctionalBackend(cfg, **options).run(routine, waves=waves, gtkw=gtkw)
