"""The vector unit: ``VADD``, ``VMUL``, ``LUT``, ``CELL`` and ``MOVE`` over activation-SRAM words,
and the LUT memory they (and ``CELL``) read.

Semantics are those of :mod:`rtl.isa` (the integer arithmetic of :mod:`model.intref`); this
module fixes the timing.

Micro-architecture
------------------
One activation-SRAM read port and the (shared) write port; ``K`` element datapaths.

* **Reads.** One source word per cycle, ``R`` reads per output word in a fixed slot order:
  ``VADD``/``VMUL`` ``a+w, b+w`` (``R = 2``); ``LUT``/``MOVE`` ``src+w`` (``R = 1``); ``CELL``
  ``lo, hi, f, i, g, o`` (``R = 6``: the cell planes ``b+w``, ``b+n+w``, then the gates
  ``a+n+w``, ``a+w``, ``a+2n+w``, ``a+3n+w``). The slot bases are computed once, when the
  command is latched (``MOVE.INDEXED``'s ``a + ARG*n`` included), so each cycle adds the word
  index to one of at most six registers.
* **Data** arrive one cycle after their read (the SRAM's latency) and are held in operand
  registers until the word's last slot arrives. Every datapath then feeds a register loaded
  only in the cycle it is used (a compiled simulator such as Verilator evaluates all
  combinational logic on every clock edge, but the input logic of an enabled register only
  when it loads: see :mod:`rtl.verilog`), so the unit costs little while it is idle:

  - ``VADD``/``VMUL``/``MOVE``: the result word is registered when the last operand arrives
    and written the next cycle.
  - ``LUT``: the arriving word's ``K`` LUT addresses (``256*table + x + 128``) are registered;
    the LUT memory is read the next cycle (``K`` read ports) and its output written the cycle
    after.
  - ``CELL``: when ``g`` arrives the new cell state ``c'`` (``K`` x int16) is registered; when
    ``o`` arrives, ``o`` and the tanh addresses ``sat_8(rshr(c', 6))`` (table 1) are registered;
    after the lookup ``h`` is registered and written. The two planes of ``c'`` are written in the
    two cycles after ``o`` arrived (``lo`` then ``hi``) while the next word's reads go on.

* **Timing** (cycle 0: the cycle ``start`` is sampled; ``busy`` is high from cycle 1 until the
  last write has been issued, and low in the next cycle, the controller's unit wait):

  ========  ============  =============================================
  op        reads         unit cycles (start to the first ``busy``-low cycle)
  ========  ============  =============================================
  VADD      ``2n``        ``2n + 3``
  VMUL      ``2n``        ``2n + 3``
  MOVE      ``n``         ``n + 3``
  LUT       ``n``         ``n + 4``
  CELL      ``6n``        ``6n + 5``
  any       ``n = 0``     ``2``
  ========  ============  =============================================

  :func:`unit_cycles` gives the same numbers. The next instruction's first read comes at least
  two cycles after this one's last write, so it sees every word written.

* **LUT memory**: :data:`rtl.isa.LUT_TABLES` x :data:`rtl.isa.LUT_ENTRIES` int8 entries, one
  memory of bytes with 16 write ports: a ``LOAD.LUT`` record (16 bytes, LUT row ``r``) writes
  entries ``16r .. 16r + 15`` in one cycle (entry ``e`` of table ``t`` is flat entry
  ``256t + e``, byte ``e % 16`` of row ``16t + e // 16``, as :mod:`rtl.isa` defines).

A destination that partly overlaps a source, or ``CELL`` operands that overlap, are undefined
(:mod:`rtl.isa`). In place (``dst == a``) works: word ``w`` is written once all its operands have
been read, and no later read touches word ``w``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import isa
from .config import HardwareConfig

__all__ = ["VectorUnit", "unit_cycles", "READS_PER_WORD"]

#: Source words read per output word.
READS_PER_WORD = {isa.Op.VADD: 2, isa.Op.VMUL: 2, isa.Op.LUT: 1, isa.Op.MOVE: 1, isa.Op.CELL: 6}
#: Cycles beyond the reads: read latency and the write (plus the LUT read; plus CELL's planes).
_EXTRA = {isa.Op.VADD: 3, isa.Op.VMUL: 3, isa.Op.MOVE: 3, isa.Op.LUT: 4, isa.Op.CELL: 5}


def unit_cycles(op, n: int) -> int:
    """Cycles from ``start`` to the first cycle ``busy`` is low, for a vector instruction of
    ``n`` words (the table in the module docstring)."""
    op = isa.Op(op)
    if op not in READS_PER_WORD:
        raise ValueError(f"{op.name} is not a vector instruction")
    if n == 0:
        return 2
    return READS_PER_WORD[op] * n + _EXTRA[op]


def _sat(value, bits: int):
    """``value`` clamped to signed ``bits`` bits (an expression, ``bits`` wide)."""
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    return Mux(value > hi, hi, Mux(value < lo, lo, value))[:bits].as_signed()


def _rshr_const(value, s: int):
    """``rshr(value, s)`` for a constant ``s > 0`` (half-up rounding, flooring shift)."""
    return (value + (1 << (s - 1))) >> s


class VectorUnit(wiring.Component):
    """Element-wise instructions over activation-SRAM words (module docstring).

    Ports
    -----
    start : In(1)
        Pulse (while ``busy`` is low) to latch ``op``, ``flags``, ``args`` and ``arg``.
    op : In(4); flags : In(4); args : In(rtl.isa.vector_layout(cfg)); arg : In(act_addr_bits)
        The instruction and the ``ARG`` register (``MOVE.INDEXED``).
    busy : Out(1)
        From the cycle after ``start`` until the last write has been issued.
    rd_addr : Out(act_addr_bits); rd_en : Out(1); rd_data : In(K*act_bits)
        Activation-SRAM read port (1-cycle latency).
    wr_addr : Out(act_addr_bits); wr_en : Out(1); wr_data : Out(K*act_bits)
        Whole-word activation-SRAM writes.
    lut_wr_row : In(5); lut_wr_data : In(128); lut_wr_en : In(1)
        LUT memory row writes (``LOAD.LUT``).

    Attributes
    ----------
    lut_mem : amaranth.lib.memory.Memory
        The LUT memory (512 bytes), for backdoor access in the Amaranth simulator.
    """

    def __init__(self, cfg: HardwareConfig):
        if not isinstance(cfg, HardwareConfig):
            raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
        self.cfg = cfg
        ab = cfg.act_addr_bits
        super().__init__({
            "start": In(1),
            "op": In(4),
            "flags": In(4),
            "args": In(isa.vector_layout(cfg)),
            "arg": In(ab),
            "busy": Out(1),
            "rd_addr": Out(ab),
            "rd_en": Out(1),
            "rd_data": In(cfg.aword_bits),
            "wr_addr": Out(ab),
            "wr_en": Out(1),
            "wr_data": Out(cfg.aword_bits),
            "lut_wr_row": In(range(isa.LUT_ROWS)),
            "lut_wr_data": In(8 * isa.LUT_ROW_BYTES),
            "lut_wr_en": In(1),
        })
        self.lut_mem = Memory(shape=signed(8), depth=isa.LUT_TABLES * isa.LUT_ENTRIES, init=[])

    def elaborate(self, platform):
        cfg = self.cfg
        K, ab = cfg.k, cfg.act_addr_bits
        abits = cfg.act_bits
        m = Module()
        m.submodules.lut = self.lut_mem

        # -- LUT memory: 16 byte-wide write ports (one record per cycle), K read ports --------
        rowb = isa.LUT_ROW_BYTES
        for j in range(rowb):
            wp = self.lut_mem.write_port()
            m.d.comb += [wp.addr.eq(Cat(Const(j, 4), self.lut_wr_row)),
                         wp.data.eq(self.lut_wr_data[8 * j:8 * j + 8]),
                         wp.en.eq(self.lut_wr_en)]
        lut_rd = [self.lut_mem.read_port() for _ in range(K)]

        # -- command --------------------------------------------------------------------------
        op = Signal(4)
        shift = Signal(4)
        table = Signal()
        n = Signal(ab + 1)
        R = Signal(range(7))            # reads per word
        base = [Signal(ab, name=f"base{s}") for s in range(6)]   # slot base addresses
        dst = Signal(ab)
        pbase = Signal(ab)              # CELL: the planes (b); lo at pbase+w, hi at pbase+n+w
        args = self.args
        is_ = {o: (self.op == o.value) for o in (isa.Op.VADD, isa.Op.VMUL, isa.Op.LUT,
                                                 isa.Op.CELL, isa.Op.MOVE)}
        reading = Signal()              # reads remain
        first = Signal()                # cycle 1 (busy even for n = 0)
        rs = Signal(range(6))           # slot of the next read
        rw = Signal(ab + 1)             # word of the next read

        with m.If(self.start & ~self.busy):
            src = Signal(ab)
            indexed = is_[isa.Op.MOVE] & self.flags[0]
            m.d.comb += src.eq(args.a + Mux(indexed, self.arg * args.n, 0))
            n_ = args.n[:ab]
            m.d.sync += [
                op.eq(self.op), shift.eq(args.shift), table.eq(self.flags[0]), n.eq(args.n),
                dst.eq(args.dst), pbase.eq(args.b), first.eq(1),
                reading.eq(args.n != 0), rs.eq(0), rw.eq(0),
            ]
            with m.If(is_[isa.Op.CELL]):
                m.d.sync += [R.eq(6), base[0].eq(args.b), base[1].eq(args.b + n_),
                             base[2].eq(args.a + n_), base[3].eq(args.a),
                             base[4].eq(args.a + 2 * n_), base[5].eq(args.a + 3 * n_)]
            with m.Elif(is_[isa.Op.VADD] | is_[isa.Op.VMUL]):
                m.d.sync += [R.eq(2), base[0].eq(args.a), base[1].eq(args.b)]
            with m.Else():
                m.d.sync += [R.eq(1), base[0].eq(src)]
        with m.Else():
            m.d.sync += first.eq(0)

        # -- read issue -------------------------------------------------------------------------
        slot_base = Signal(ab)
        with m.Switch(rs):
            for s in range(6):
                with m.Case(s):
                    m.d.comb += slot_base.eq(base[s])
        m.d.comb += [self.rd_addr.eq(slot_base + rw), self.rd_en.eq(reading)]
        last_slot = Signal()
        m.d.comb += last_slot.eq(rs == R - 1)
        with m.If(reading):
            with m.If(last_slot):
                m.d.sync += [rs.eq(0), rw.eq(rw + 1)]
                with m.If(rw + 1 == n):
                    m.d.sync += reading.eq(0)
            with m.Else():
                m.d.sync += rs.eq(rs + 1)

        # -- data stage: the read issued last cycle arrives ---------------------------------
        d_valid = Signal()
        d_slot = Signal(range(6))
        d_word = Signal(ab)
        m.d.sync += d_valid.eq(reading)
        with m.If(reading):
            m.d.sync += [d_slot.eq(rs), d_word.eq(rw[:ab])]
        def el(sig, k):
            return sig[abits * k:abits * (k + 1)].as_signed()

        x = [el(self.rd_data, k) for k in range(K)]
        held = [Signal(cfg.aword_bits, name=f"held{s}") for s in range(4)]
        for s in range(4):
            with m.If(d_valid & (d_slot == s)):
                m.d.sync += held[s].eq(self.rd_data)

        # -- results ------------------------------------------------------------------------
        # Every datapath is the input of a register loaded only in the cycle it is used, so a
        # compiled simulator (which evaluates all combinational logic on every clock edge)
        # computes it only then; what reaches the write port and the LUT memory's read ports
        # are registers and wires.
        opv = {o: (op == o.value) for o in is_}
        d_last = Signal()
        m.d.comb += d_last.eq(d_valid & (d_slot == R - 1))

        # VADD / VMUL / MOVE: the result word is registered when the last operand arrives.
        res = Signal(cfg.aword_bits)
        res_valid = Signal()
        res_word = Signal(ab)
        simple = Signal()
        m.d.comb += simple.eq(d_last & (opv[isa.Op.VADD] | opv[isa.Op.VMUL] | opv[isa.Op.MOVE]))
        m.d.sync += res_valid.eq(simple)
        rnd = Mux(shift == 0, 0, Const(1, 16) << (shift - 1)[:4])
        with m.If(simple):
            m.d.sync += res_word.eq(d_word)
            with m.Switch(op):
                with m.Case(isa.Op.VADD.value):
                    m.d.sync += res.eq(Cat(*[_sat(el(held[0], k) + x[k], 8)
                                             for k in range(K)]))
                with m.Case(isa.Op.VMUL.value):
                    m.d.sync += res.eq(Cat(*[_sat((el(held[0], k) * x[k] + rnd) >> shift, 8)
                                             for k in range(K)]))
                with m.Default():
                    m.d.sync += res.eq(self.rd_data)

        # CELL: c' is registered when g (slot 4) arrives; when o (slot 5) arrives, o and the
        # tanh addresses are registered; the lookup takes a cycle; then h is registered and
        # written. The planes of c' are written in the two cycles after o arrived.
        creg = Signal(16 * K)
        g_arrives = Signal()
        m.d.comb += g_arrives.eq(d_valid & (d_slot == 4) & opv[isa.Op.CELL])
        with m.If(g_arrives):
            cnew = []
            for k in range(K):
                c = Cat(held[0][abits * k:abits * (k + 1)],
                        held[1][abits * k:abits * (k + 1)]).as_signed()
                f, i, g = el(held[2], k), el(held[3], k), x[k]
                cnew.append(_sat(_rshr_const(f * c, 7) + _rshr_const(i * g, 3), 16))
            m.d.sync += creg.eq(Cat(*cnew))
        o_arrives = Signal()
        m.d.comb += o_arrives.eq(d_last & opv[isa.Op.CELL])
        held_o = Signal(cfg.aword_bits)
        c_word = Signal(ab)
        with m.If(o_arrives):
            m.d.sync += [held_o.eq(self.rd_data), c_word.eq(d_word)]

        # The LUT memory's read ports: addresses and enable registered (LUT: from the arriving
        # word; CELL: from c'), data one cycle later.
        lut_addr = [Signal(9, name=f"lut_addr{k}") for k in range(K)]
        lut_en = Signal()
        lut_word = Signal(ab)
        lut_is_op = Signal()
        m.d.comb += lut_is_op.eq(d_valid & opv[isa.Op.LUT])
        m.d.sync += lut_en.eq(lut_is_op | o_arrives)
        with m.If(lut_is_op):
            m.d.sync += [lut_word.eq(d_word)]
            m.d.sync += [lut_addr[k].eq(Cat(x[k][:8] ^ 0x80, table)) for k in range(K)]
        with m.If(o_arrives):
            m.d.sync += [lut_addr[k].eq(Cat(_sat(_rshr_const(
                creg[16 * k:16 * (k + 1)].as_signed(), 6), 8)[:8] ^ 0x80, Const(1, 1)))
                for k in range(K)]
        for k, rp in enumerate(lut_rd):
            m.d.comb += [rp.addr.eq(lut_addr[k]), rp.en.eq(lut_en)]
        l_valid = Signal()          # LUT: the looked-up word is on the read ports
        l_word = Signal(ab)
        m.d.sync += l_valid.eq(lut_en & opv[isa.Op.LUT])
        with m.If(lut_en):
            m.d.sync += l_word.eq(lut_word)
        t_valid = Signal()          # CELL: tanh(c') is on the read ports
        m.d.sync += t_valid.eq(lut_en & opv[isa.Op.CELL])
        h = Signal(cfg.aword_bits)
        h_valid = Signal()
        h_word = Signal(ab)
        m.d.sync += h_valid.eq(t_valid)
        with m.If(t_valid):
            m.d.sync += [h_word.eq(c_word),
                         h.eq(Cat(*[_sat(_rshr_const(el(held_o, k) * lut_rd[k].data, 7), 8)
                                    for k in range(K)]))]
        planes = Signal(2)          # 2: lo next, 1: hi next
        with m.If(o_arrives):
            m.d.sync += planes.eq(2)
        with m.Elif(planes != 0):
            m.d.sync += planes.eq(planes - 1)

        lo_word = Cat(*[creg[16 * k:16 * k + 8] for k in range(K)])
        hi_word = Cat(*[creg[16 * k + 8:16 * k + 16] for k in range(K)])

        # -- the write port (the sources never coincide) -------------------------------------------
        wr_now = Signal()
        wr_addr = Signal(ab)
        wr_data = Signal(cfg.aword_bits)
        with m.If(res_valid):
            m.d.comb += [wr_now.eq(1), wr_addr.eq(dst + res_word), wr_data.eq(res)]
        with m.Elif(l_valid):
            m.d.comb += [wr_now.eq(1), wr_addr.eq(dst + l_word),
                         wr_data.eq(Cat(*[rp.data for rp in lut_rd]))]
        with m.Elif(h_valid):
            m.d.comb += [wr_now.eq(1), wr_addr.eq(dst + h_word), wr_data.eq(h)]
        with m.Elif(planes == 2):
            m.d.comb += [wr_now.eq(1), wr_addr.eq(pbase + c_word), wr_data.eq(lo_word)]
        with m.Elif(planes == 1):
            m.d.comb += [wr_now.eq(1), wr_addr.eq(pbase + n[:ab] + c_word),
                         wr_data.eq(hi_word)]

        m.d.comb += [
            self.wr_en.eq(wr_now), self.wr_addr.eq(wr_addr), self.wr_data.eq(wr_data),
            self.busy.eq(first | reading | d_valid | res_valid | lut_en | l_valid | t_valid
                         | h_valid | (planes != 0)),
        ]
        return m
