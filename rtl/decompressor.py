"""On-chip matrix reconstruction: the decompressor that streams a LOAD from DRAM.

The decompressor reads a byte stream of compressed weight words (or raw 16-byte parameter
records, see :mod:`rtl.memfmt`) from the DRAM model at ``B`` bytes per cycle and writes one
record per cycle into the lanes' weight SRAMs (dense words, the zeros filled back in) or
parameter memories.

:class:`Decompressor` is the hardware. :func:`reference_load` is the same machine as a plain
Python loop, cycle for cycle: it gives every write, the cycle it happens in, the DRAM reads and
the cycles from ``start`` until ``busy`` falls. The tests hold the two equal, so a functional
simulator can take its LOAD timing from :func:`reference_load` (or :func:`load_cycles`)
instead of re-deriving it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bits import field_select
from .config import PARAM_RECORD_BYTES, HardwareConfig

__all__ = ["Decompressor", "reference_load", "load_cycles", "LoadTrace", "buffer_bytes"]


def buffer_bytes(cfg: HardwareConfig) -> int:
    """Capacity ``CAP`` of the decompressor's byte buffer for ``cfg``.

    ``max(max_compressed_word_bytes, 16) + 2*B``: the biggest record the parser may wait for,
    plus one DRAM word arriving and one in flight, so a read can be issued every cycle while the
    parser is waiting for a record's last bytes.
    """
    if not isinstance(cfg, HardwareConfig):
        raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
    return max(cfg.max_compressed_word_bytes, PARAM_RECORD_BYTES) + 2 * cfg.dram_bytes_per_cycle


def _target_bits(cfg: HardwareConfig) -> int:
    return max(cfg.wsram_addr_bits, cfg.param_addr_bits)


def _popcount(bits):
    """Balanced adder tree over a list of 1-bit values."""
    bits = list(bits)
    if not bits:
        return Const(0, 1)
    while len(bits) > 1:
        nxt = [bits[i] + bits[i + 1] for i in range(0, len(bits) - 1, 2)]
        if len(bits) % 2:
            nxt.append(bits[-1])
        bits = nxt
    return bits[0]


def _exclusive_prefix_popcounts(bits):
    """``out[k] = popcount(bits[0:k])`` for every ``k``: a Kogge-Stone prefix sum,
    ``log2(K)`` adder levels deep."""
    n = len(bits)
    incl = [bits[k] for k in range(n)]
    d = 1
    while d < n:
        incl = [incl[k] + incl[k - d] if k >= d else incl[k] for k in range(n)]
        d *= 2
    return [Const(0, 1)] + incl[:-1]


class Decompressor(wiring.Component):
    """Matrix reconstruction unit: DRAM byte stream in, one dense record per cycle out.

    A command (``start`` high for one cycle while ``busy`` is low) streams ``dram_len`` DRAM
    words from ``dram_addr``. The stream holds ``count`` records *per lane*, lane 0 first
    (:mod:`rtl.memfmt`); record ``n`` (0-based over the stream) is written to lane
    ``n // count`` at address ``dest + n % count`` (counters, no divider). In weight mode
    (``params = 0``) a record is a compressed weight word: a ``K``-bit nonzero bitmap and the
    packed nonzero values, ``K/8 + ceil(nnz*weight_bits/8)`` bytes; it is written as a dense
    ``K*weight_bits`` word with weight ``k`` at bits ``[k*weight_bits, (k+1)*weight_bits)``.
    In parameter mode (``params = 1``) a record is 16 raw bytes, written as a 128-bit word
    (byte 0 at bits ``[0, 8)``). Records are packed back to back, byte-aligned; the bytes
    after the last record (the stream's zero padding) are ignored, and no read is issued once
    the last record has been parsed.

    Micro-architecture
    ------------------
    * **Fetch.** A read (``dram_rd_en``) is issued every cycle while words remain, records
      remain and the byte buffer is guaranteed room: ``fill - consume + B*in_flight + B <= CAP``
      (``CAP`` = :attr:`buffer_bytes`). Data arrives the next cycle and is appended at the fill
      level.
    * **Parse.** From the bottom of the buffer: weight mode takes ``size = K/8 +
      ceil(popcount(bitmap)*weight_bits/8)``, parameter mode ``size = 16``. When ``size`` bytes
      are buffered, the record goes to the pipeline register and ``size`` bytes are shifted
      out, in the same cycle as a DRAM word is appended. A weight record is expanded on its way
      into the register: ``dense[k] = bitmap[k] ? value[popcount(bitmap[0:k])] : 0``
      (Kogge-Stone prefix popcounts, a ``k+1``-way mux per weight); a parameter record is
      registered as it is. The register loads only in the cycles a record is taken, so a
      compiled simulator evaluates the expansion only then (it evaluates logic *after* a
      register on every clock edge).
    * **Write** (the next cycle, from the pipeline register): ``wr_*`` are driven for that one
      cycle. ``wr_wdata`` / ``wr_pdata`` hold the last record of their kind; they are only
      meaningful with their strobe.

    Timing contract
    ---------------
    Cycle 0 is the cycle ``start`` is sampled. The first DRAM read is issued in cycle
    :attr:`issue_latency` (1); DRAM word ``i``'s bytes can be parsed ``2`` cycles after its read
    is issued; a record is written :attr:`write_latency` (1) cycle after it is parsed; ``busy``
    is high from cycle 1 through the cycle of the last write and low in the next. So with reads
    issued back to back, a stream of ``N`` words whose last record ends in the last word ends
    after ``N +`` :attr:`drain_cycles` (4) cycles: DRAM word ``N-1`` is read in cycle ``N``,
    arrives in ``N+1``, is parsed in ``N+2``, written in ``N+3``, and ``busy`` is low in
    ``N+4``.

    Throughput: at most one record per cycle and at most one DRAM word per cycle. If every
    record is at least ``B`` bytes (always true when ``B <= K/8``, see
    :attr:`HardwareConfig.decompressor_keeps_up`, and always true in parameter mode when
    ``B <= 16``) reads are issued on every cycle from 1 to ``N``: a LOAD of ``N`` DRAM words
    (the stream as the compiler lays it out, its last word holding the last record's end)
    takes exactly ``N + 4`` cycles, a DRAM utilisation of ``N / (N + 4)``. Otherwise
    (``B > K/8`` and sparse words shorter than a DRAM word) the parser is the bottleneck, one
    record per cycle, and the buffer throttles the reads. :func:`reference_load` gives the
    exact cycle count of any stream.

    ``count = 0`` finishes at once: ``busy`` is high in cycle 1 only, no read is issued. A
    stream shorter than its records (``dram_len`` too small) is not an error the hardware can
    report: the decompressor stops when the stream has run dry and no complete record is
    buffered, without writing the missing records; it never hangs.

    Parameters
    ----------
    cfg : HardwareConfig
        Every width and the buffer size follow from it. ``TGT`` below is
        ``max(cfg.wsram_addr_bits, cfg.param_addr_bits)``.

    Attributes
    ----------
    start : In(1)
        Command strobe; the command ports are sampled in this cycle, and only while ``busy``
        is low.
    params : In(1)
        0: compressed weight words; 1: 16-byte parameter records.
    single : In(1)
        ``count`` records *in all* rather than per lane (``LOAD.LUT``: they go to one memory;
        ``wr_lane`` stays 0).
    dram_addr : In(cfg.dram_addr_bits)
        First DRAM word of the stream.
    dram_len : In(cfg.dram_addr_bits + 1)
        DRAM words in the stream.
    count : In(TGT + 1)
        Records per lane.
    dest : In(TGT)
        Address of each lane's first record.
    busy : Out(1)
        High from the cycle after ``start`` through the cycle of the last write.
    dram_rd_addr : Out(cfg.dram_addr_bits)
        DRAM read address, valid with ``dram_rd_en``.
    dram_rd_en : Out(1)
        DRAM read strobe (the top counts it as DRAM traffic).
    dram_rd_data : In(cfg.dram_word_bits)
        Read data, one cycle after the read was issued (a non-transparent synchronous read
        port); byte ``i`` of the word is bits ``[8i, 8i+8)``.
    wr_lane : Out(cfg.lane_bits)
        Lane of the record being written.
    wr_addr : Out(TGT)
        Address in that lane's weight SRAM or parameter memory.
    wr_wdata : Out(cfg.wword_bits)
        Dense weight word (valid with ``wr_wen``).
    wr_wen : Out(1)
        Weight SRAM write strobe.
    wr_wnz : Out(K)
        The record's nonzero bitmap (bit ``k`` set when weight ``k`` of ``wr_wdata`` is
        nonzero), valid with ``wr_wen``: the top stores it beside the dense word so the lanes
        need no zero detection. It is the compressed word's own bitmap, so it costs nothing.
    wr_pdata : Out(128)
        Raw parameter record (valid with ``wr_pen``).
    wr_pen : Out(1)
        Parameter memory write strobe.
    """

    #: Cycles from ``start`` to the first DRAM read.
    issue_latency = 1
    #: Cycles from a read's issue to the cycle its bytes can be parsed (1 memory + 1 buffer).
    fetch_latency = 2
    #: Cycles from a record's parse to its write strobe.
    write_latency = 1
    #: ``busy`` falls ``N + drain_cycles`` cycles after ``start`` for a full-rate stream of
    #: ``N`` DRAM words.
    drain_cycles = 4

    def __init__(self, cfg: HardwareConfig):
        if not isinstance(cfg, HardwareConfig):
            self._MustUse__silence = True    # a failed construction is not an unused design
            raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
        self._cfg = cfg
        tgt = _target_bits(cfg)
        super().__init__({
            "start": In(1),
            "params": In(1),
            "single": In(1),
            "dram_addr": In(cfg.dram_addr_bits),
            "dram_len": In(cfg.dram_addr_bits + 1),
            "count": In(tgt + 1),
            "dest": In(tgt),
            "busy": Out(1),
            "dram_rd_addr": Out(cfg.dram_addr_bits),
            "dram_rd_en": Out(1),
            "dram_rd_data": In(cfg.dram_word_bits),
            "wr_lane": Out(cfg.lane_bits),
            "wr_addr": Out(tgt),
            "wr_wdata": Out(cfg.wword_bits),
            "wr_wen": Out(1),
            "wr_wnz": Out(cfg.k),
            "wr_pdata": Out(8 * PARAM_RECORD_BYTES),
            "wr_pen": Out(1),
        })

    @property
    def cfg(self) -> HardwareConfig:
        return self._cfg

    @property
    def buffer_bytes(self) -> int:
        """``CAP``, the byte buffer's capacity (see :func:`buffer_bytes`)."""
        return buffer_bytes(self._cfg)

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to the write of a record held in the first DRAM word
        (``issue_latency + fetch_latency + write_latency``)."""
        return self.issue_latency + self.fetch_latency + self.write_latency

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()

        K = cfg.k
        wb = cfg.weight_bits
        B = cfg.dram_bytes_per_cycle
        L = cfg.lanes
        tgt = _target_bits(cfg)
        cap = self.buffer_bytes
        max_size = max(cfg.max_compressed_word_bytes, PARAM_RECORD_BYTES)
        fill_bits = cap.bit_length()
        size_bits = max_size.bit_length()

        # -- command state ------------------------------------------------------------------
        run = Signal()              # between start and the last parse (or the stream running dry)
        more = Signal()             # records remain to be parsed
        mode_params = Signal()
        mode_single = Signal()
        rd_addr = Signal(cfg.dram_addr_bits)
        words_left = Signal(cfg.dram_addr_bits + 1)
        inflight = Signal()         # a read issued last cycle: its data is on dram_rd_data
        count = Signal(tgt + 1)
        dest = Signal(tgt)
        idx = Signal(tgt + 1)       # record index within the current lane
        addr = Signal(tgt)          # dest + idx
        lane = Signal(cfg.lane_bits)

        # -- byte buffer --------------------------------------------------------------------
        buf = Signal(8 * cap)
        fill = Signal(fill_bits)

        # -- parse ----------------------------------------------------------------------------
        bitmap = buf[:K]
        nnz = _popcount([bitmap[k] for k in range(K)])
        wsize = Signal(size_bits)
        m.d.comb += wsize.eq(cfg.bitmap_bytes + ((nnz * wb + 7) >> 3))
        size = Signal(size_bits)
        m.d.comb += size.eq(Mux(mode_params, PARAM_RECORD_BYTES, wsize))
        # size >= K/8, so fill >= size also means the bitmap itself is complete.
        take = Signal()
        m.d.comb += take.eq(run & more & (fill >= size))
        consume = Signal(size_bits)
        m.d.comb += consume.eq(Mux(take, size, 0))
        last = Signal()
        m.d.comb += last.eq((idx == count - 1) & (mode_single | (lane == L - 1)))

        # -- fetch ----------------------------------------------------------------------------
        arriving = Signal()
        m.d.comb += arriving.eq(run & inflight)
        kept = Signal(fill_bits)     # bytes left after this cycle's consume
        m.d.comb += kept.eq(fill - consume)
        room = Signal()
        m.d.comb += room.eq(kept + Mux(arriving, B, 0) + B <= cap)
        issue = Signal()
        m.d.comb += issue.eq(run & more & (words_left != 0) & room)
        dry = Signal()
        m.d.comb += dry.eq(run & more & (words_left == 0) & ~inflight & ~take)

        m.d.comb += [
            self.dram_rd_en.eq(issue),
            self.dram_rd_addr.eq(rd_addr),
        ]
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += [
                rd_addr.eq(rd_addr + 1),
                words_left.eq(words_left - 1),
            ]

        # Shift out the consumed record and append the arriving word at the new fill level.
        # Bytes above ``fill`` are always zero, so the append is an OR.
        shifted = buf >> Cat(Const(0, 3), consume)
        appended = (self.dram_rd_data << Cat(Const(0, 3), kept))[:8 * cap]
        with m.If(run):
            m.d.sync += [
                buf.eq(Mux(arriving, shifted | appended, shifted)),
                fill.eq(kept + Mux(arriving, B, 0)),
            ]

        more_next = Signal()
        m.d.comb += more_next.eq(more & ~(take & last) & ~dry)
        with m.If(run):
            m.d.sync += [
                more.eq(more_next),
                run.eq(more_next),
            ]

        with m.If(take):
            with m.If(idx == count - 1):
                m.d.sync += [idx.eq(0), addr.eq(dest), lane.eq(lane + 1)]
            with m.Else():
                m.d.sync += [idx.eq(idx + 1), addr.eq(addr + 1)]

        # -- command ------------------------------------------------------------------------
        with m.If(self.start & ~self.busy):
            m.d.sync += [
                run.eq(1),
                more.eq(self.count != 0),
                mode_params.eq(self.params),
                mode_single.eq(self.single),
                rd_addr.eq(self.dram_addr),
                words_left.eq(self.dram_len),
                count.eq(self.count),
                dest.eq(self.dest),
                idx.eq(0),
                addr.eq(self.dest),
                lane.eq(0),
                buf.eq(0),
                fill.eq(0),
            ]

        # -- expand, into the pipeline register ------------------------------------------------
        # dense[k] = bitmap[k] ? value[popcount(bitmap[0:k])] : 0, computed from the bottom of
        # the buffer and registered only in the cycles a weight record is taken: a compiled
        # simulator evaluates the K muxes under that enable instead of on every clock edge.
        bitmap_p = buf[:K]
        values_p = buf[K:K + K * wb]
        prefix = _exclusive_prefix_popcounts([bitmap_p[k] for k in range(K)])
        dense = []
        for k in range(K):
            # value index popcount(bitmap[0:k]) <= k: a (k+1)-way mux
            if k:
                v = field_select(m, values_p[:(k + 1) * wb], prefix[k][:max(1, k.bit_length())],
                                 wb, k + 1, name=f"expand{k}")
            else:
                v = values_p[:wb]
            dense.append(Mux(bitmap_p[k], v, 0))

        s1_valid = Signal()
        s1_params = Signal()
        s1_wdata = Signal(cfg.wword_bits)
        s1_wnz = Signal(K)
        s1_pdata = Signal(8 * PARAM_RECORD_BYTES)
        s1_lane = Signal(cfg.lane_bits)
        s1_addr = Signal(tgt)
        m.d.sync += s1_valid.eq(take)
        with m.If(take):
            m.d.sync += [
                s1_params.eq(mode_params),
                s1_lane.eq(lane),
                s1_addr.eq(addr),
            ]
            with m.If(mode_params):
                m.d.sync += s1_pdata.eq(buf[:8 * PARAM_RECORD_BYTES])
            with m.Else():
                m.d.sync += [s1_wdata.eq(Cat(*dense)), s1_wnz.eq(bitmap_p)]

        m.d.comb += [
            self.busy.eq(run | s1_valid),
            self.wr_lane.eq(s1_lane),
            self.wr_addr.eq(s1_addr),
            self.wr_wdata.eq(s1_wdata),
            self.wr_wnz.eq(s1_wnz),
            self.wr_wen.eq(s1_valid & ~s1_params),
            self.wr_pdata.eq(s1_pdata),
            self.wr_pen.eq(s1_valid & s1_params),
        ]
        return m


# -- the same machine in Python ------------------------------------------------------------------

@dataclass
class LoadTrace:
    """What one LOAD does, cycle by cycle (cycle 0 is the ``start`` cycle).

    Attributes
    ----------
    cycles : int
        The first cycle after ``start`` in which ``busy`` is low: the controller's wait.
    dram_reads : int
        DRAM words read (``dram_rd_en`` strobes).
    read_cycles : list of int
        The cycle of every read strobe.
    writes : list of (cycle, lane, addr, value)
        Every record written; ``value`` is the dense weight word (weight mode) or the 128-bit
        record (parameter mode), as an integer.
    """

    cycles: int
    dram_reads: int
    writes: list = field(default_factory=list)
    read_cycles: list = field(default_factory=list)


def reference_load(cfg: HardwareConfig, dram: Sequence[int], *, dram_addr: int, dram_len: int,
                   count: int, dest: int, params: bool = False, single: bool = False
                   ) -> LoadTrace:
    """Run one LOAD on the Python twin of :class:`Decompressor`, cycle for cycle.

    Parameters
    ----------
    cfg : HardwareConfig
    dram : sequence of int
        DRAM contents, one ``B``-byte word per element (little-endian bytes).
    dram_addr, dram_len, count, dest, params, single
        The command, as on the :class:`Decompressor` ports.

    Returns
    -------
    LoadTrace
    """
    if not isinstance(cfg, HardwareConfig):
        raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
    K, wb, B, L = cfg.k, cfg.weight_bits, cfg.dram_bytes_per_cycle, cfg.lanes
    cap = buffer_bytes(cfg)
    tgt_mask = (1 << _target_bits(cfg)) - 1
    addr_mask = (1 << cfg.dram_addr_bits) - 1
    rec_bytes = max(K * (1 + wb), 8 * PARAM_RECORD_BYTES) // 8
    wmask = (1 << wb) - 1

    def expand(rec: bytes) -> int:
        if params:
            return int.from_bytes(rec[:PARAM_RECORD_BYTES], "little")
        v = int.from_bytes(rec, "little")
        bitmap, values = v & ((1 << K) - 1), v >> K
        out, j = 0, 0
        for k in range(K):
            if bitmap >> k & 1:
                out |= ((values >> (j * wb)) & wmask) << (k * wb)
                j += 1
        return out

    trace = LoadTrace(cycles=0, dram_reads=0)
    buf = bytearray()
    run, more = True, count != 0
    rd_addr, words_left, inflight = dram_addr, dram_len, False
    idx, addr, lane = 0, dest, 0
    s1 = None
    cycle = 1
    while run or s1 is not None:
        if s1 is not None:
            trace.writes.append((cycle,) + s1)
        if more:
            size = PARAM_RECORD_BYTES if params else (
                K // 8 + (bin(int.from_bytes(buf[:K // 8], "little")).count("1") * wb + 7) // 8
                if len(buf) >= K // 8 else None)
            take = size is not None and len(buf) >= size
        else:
            take = False
        consume = size if take else 0
        arriving = inflight
        issue = more and words_left > 0 and len(buf) - consume + B * arriving + B <= cap
        dry = more and words_left == 0 and not inflight and not take
        s1 = None
        if take:
            rec = bytes(buf[:rec_bytes]).ljust(rec_bytes, b"\0")
            s1 = (lane, addr, expand(rec))
            last = idx == count - 1 and (single or lane == L - 1)
            if idx == count - 1:
                idx, addr, lane = 0, dest, lane + 1
            else:
                idx, addr = idx + 1, (addr + 1) & tgt_mask
            del buf[:consume]
        else:
            last = False
        if arriving:
            buf += data_word.to_bytes(B, "little")
        if issue:
            data_word = dram[rd_addr]
            rd_addr = (rd_addr + 1) & addr_mask
            words_left -= 1
            trace.dram_reads += 1
            trace.read_cycles.append(cycle)
        inflight = issue
        more = more and not (take and last) and not dry
        run = more
        cycle += 1
    trace.cycles = cycle
    return trace


def load_cycles(cfg: HardwareConfig, stream: bytes, *, count: int, params: bool = False) -> int:
    """Cycles from ``start`` until ``busy`` falls for a LOAD of ``stream`` (whole DRAM words,
    as the compiler lays them out). ``len(stream)/B + 4`` whenever every record is at least
    ``B`` bytes."""
    B = cfg.dram_bytes_per_cycle
    if len(stream) % B:
        raise ValueError(f"stream of {len(stream)} bytes is not whole {B}-byte DRAM words")
    words = [int.from_bytes(stream[i:i + B], "little") for i in range(0, len(stream), B)]
    return reference_load(cfg, words, dram_addr=0, dram_len=len(words), count=count, dest=0,
                          params=params).cycles
