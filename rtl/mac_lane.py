"""A zero-skipping MAC lane: one of ``L`` lanes computing the rows of a matrix-vector product.

Dimension letters: ``K`` weights (and activations) per SRAM word, ``M`` multipliers per lane.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from .bits import field_select, lowest_set_index, popcount, tree_sum
from .config import HardwareConfig
from .memfmt import param_record_layout

__all__ = ["MacLane", "issue_cycles"]


def issue_cycles(pairs, m: int):
    """Issue cycles of one row slot of a :class:`MacLane`: the lane's timing contract.

    ``pairs`` holds, per word of the row in order, the pairs issued from it (nonzero weight
    *and* activation; ``K`` in dense mode); ``m`` is ``M``. Each cycle the lane issues the
    ``M`` lowest pairs of two words: the unissued rest ``h`` of an earlier word of the row
    (the hold register) first, then the fresh word on the read port, which leaves the port
    (and the next word is read) once ``h`` fits beside it. So a word waits
    ``ceil(h / M) - 1`` cycles, then ``max(0, h + p - M)`` pairs are left over, and the row
    ends with ``ceil(h / M)`` drain cycles (the next row's first word never shares a cycle
    with this row). At least one cycle per word (one read per cycle), at most the old
    ``sum max(1, ceil(p / M))``; ``ceil(sum p / M)`` when every word has ``M`` pairs or more.
    Rows of a lane take their cycles back to back (without row-credit stalls).

    Written with ``//``, ``*`` and comparisons only, so ``pairs`` may be a sequence of ints
    or of equally shaped numpy arrays (the row's words along the first axis, rows elementwise).
    """
    h = 0
    cycles = 0
    for p in pairs:
        c = -(-h // m)
        waits = c - (c > 0)
        cycles = cycles + waits + 1
        t = h - waits * m + p - m
        h = t * (t > 0)
    return cycles - (-h // m)


class MacLane(wiring.Component):
    """Zero-skipping multiply-accumulate lane with bias, requantization and output queue.

    The lane runs ``n_rows`` row slots. For each it streams ``n_words`` dense weight words from
    its weight SRAM bank and the matching activation words, and issues only the pairs whose
    weight *and* activation are nonzero to its ``M`` multipliers (all ``K`` pairs with ``dense``).

    Pipeline (one word enters the issue stage per cycle at most)::

        S0  address generation: weight, activation reads (1-cycle SRAM latency)
        S1  issue over two words: the hold register H (the unissued rest of an earlier word
            of the row: its pair mask and a copy of its operands) and the fresh word B on the
            read ports, whose pair mask is the AND of the weight and activation bitmaps read
            beside the words (no comparators). Each cycle the M lowest pairs of (H, B) are
            selected, H's first (clear-lowest-set-bit chains, trailing-zero counts as operand
            indices). B joins only within a row and once H's rest fits beside it; it then
            leaves the read port (the next word's read is issued in the same cycle) and its
            unissued pairs, if any, move to H. So multipliers left idle by one word's last
            pairs take the next word's, and a row costs :func:`issue_cycles` of its words'
            pair counts: at least one cycle per word, ``ceil(pairs / M)`` when each word
            has ``M`` pairs or more
        S2  M multiplies, summed and accumulated (acc_bits, wrapping); on a row's last word
            the row's parameter record is read
        R1  t = acc + bias          R2  p = t * mult          R3  round and shift
        R4  saturate to int8; the result (row's ``out_index``, value) enters the output queue

    Row credits bound the rows in flight (S1 .. output queue) to :attr:`row_credits`, so the
    output queue never overflows; the lane stalls new rows when the top's output arbiter falls
    behind.

    Parameters
    ----------
    cfg : HardwareConfig

    Attributes (ports)
    ------------------
    start : In(1)
        Pulse: latch the command and begin. Ignored while busy.
    dense, w_base, p_base, n_rows, n_words, in_base : In
        The MATVEC command fields (see :mod:`rtl.isa`).
    busy : Out(1)
        High from the cycle after ``start`` until every result of the lane has left its queue.
    w_rd_addr, w_rd_en : Out; w_rd_data : In(unsigned(K*weight_bits))
        Weight SRAM bank read port (1-cycle latency; data holds while ``en`` is low).
    w_rd_nz : In(K)
        Nonzero bitmap of the weight word on ``w_rd_data`` (bit ``k``: weight ``k`` is
        nonzero), read beside it with the same timing (see :class:`rtl.top.Accelerator`).
    a_rd_addr, a_rd_en : Out; a_rd_data : In(unsigned(K*act_bits))
        Activation SRAM read port (same timing).
    a_rd_nz : In(K)
        Nonzero bitmap of the activation word on ``a_rd_data``, same timing.
    p_rd_addr, p_rd_en : Out; p_rd_data : In(unsigned(128))
        Parameter memory read port (same timing), records as :func:`rtl.memfmt.param_record_layout`.
    res_valid : Out(1); res_ready : In(1); res_index : Out(16); res_value : Out(signed(act_bits))
        Output queue head (a stream): the result for element ``out_index`` of the output vector.
    st_busy, st_stall : Out(1)
        Per-cycle status for counters: a word occupies the issue stage (H or B; the cycles of
        :func:`issue_cycles`) / the lane has rows left but the issue stage is empty (read
        latency or out of row credits).
    st_macs : Out(range(M+1))
        Pairs issued to the multipliers this cycle.
    st_skip_w, st_skip_a : Out(range(K+1))
        On the cycle a word leaves the read port (its first issue cycle): pairs skipped for
        a zero weight / for a zero activation with a nonzero weight (zero in dense mode).
    st_wsram_read, st_act_read : Out(1)
        SRAM read strobes.
    tot_skip_w, tot_skip_a : Out(cfg.counter_bits)
        Running totals (since reset, wrapping) of ``st_skip_w`` / ``st_skip_a`` over all
        earlier cycles, for the top's counters. The popcounts behind them are evaluated only on
        that cycle (a register enable), so a compiled simulator skips them in
        dense mode and while the lane is idle; ``st_skip_*`` are for testbenches and cost
        nothing when unused.
    """

    #: Rows a lane may have in flight between its issue stage and the output queue.
    row_credits = 8

    def __init__(self, cfg: HardwareConfig):
        if not isinstance(cfg, HardwareConfig):
            self._MustUse__silence = True    # a failed construction is not an unused design
            raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "start": In(1),
            "dense": In(1),
            "w_base": In(cfg.wsram_addr_bits),
            "p_base": In(cfg.param_addr_bits),
            "n_rows": In(cfg.param_addr_bits + 1),
            "n_words": In(cfg.wsram_addr_bits + 1),
            "in_base": In(cfg.act_addr_bits),
            "busy": Out(1),
            "w_rd_addr": Out(cfg.wsram_addr_bits),
            "w_rd_en": Out(1),
            "w_rd_data": In(cfg.wword_bits),
            "w_rd_nz": In(cfg.k),
            "a_rd_addr": Out(cfg.act_addr_bits),
            "a_rd_en": Out(1),
            "a_rd_data": In(cfg.aword_bits),
            "a_rd_nz": In(cfg.k),
            "p_rd_addr": Out(cfg.param_addr_bits),
            "p_rd_en": Out(1),
            "p_rd_data": In(param_record_layout(cfg).size),
            "res_valid": Out(1),
            "res_ready": In(1),
            "res_index": Out(cfg.out_index_bits),
            "res_value": Out(signed(cfg.act_bits)),
            "st_busy": Out(1),
            "st_stall": Out(1),
            "st_macs": Out(range(cfg.m + 1)),
            "st_skip_w": Out(range(cfg.k + 1)),
            "st_skip_a": Out(range(cfg.k + 1)),
            "st_wsram_read": Out(1),
            "st_act_read": Out(1),
            "tot_skip_w": Out(cfg.counter_bits),
            "tot_skip_a": Out(cfg.counter_bits),
        })

    @property
    def result_latency(self) -> int:
        """Cycles from a row's last pairs issuing in S1 to its result at the queue head."""
        return 6

    def elaborate(self, platform):
        cfg = self.cfg
        K, M, WB, AB = cfg.k, cfg.m, cfg.weight_bits, cfg.act_bits
        m = Module()

        # -- command ------------------------------------------------------------------------
        dense = Signal()
        n_rows = Signal.like(self.n_rows)
        n_words = Signal.like(self.n_words)
        in_base = Signal.like(self.in_base)
        p_base = Signal.like(self.p_base)
        active = Signal()

        # -- S0: address generation ---------------------------------------------------------
        s0_work = Signal()
        row = Signal.like(self.n_rows)
        word = Signal.like(self.n_words)
        waddr = Signal.like(self.w_rd_addr)

        credit_bits = (self.row_credits).bit_length() + 1
        credits = Signal(range(self.row_credits + 1))

        # -- S1: issue ----------------------------------------------------------------------
        # Two words are visible: the fresh word B on the SRAM read ports (held while no read
        # is issued) and the hold register H, the unissued rest of an earlier word of the same
        # row (its remaining mask and a copy of its operands).
        b_valid = Signal()
        b_first = Signal()
        b_last = Signal()
        b_row = Signal.like(row)
        h_rem = Signal(K)
        h_last = Signal()
        h_row = Signal.like(row)
        h_w = Signal(cfg.wword_bits)
        h_a = Signal(cfg.aword_bits)
        h_valid = Signal()
        m.d.comb += h_valid.eq(h_rem != 0)

        # Nonzero bitmaps of the words being read, stored beside them (no zero detection here).
        wnz = self.w_rd_nz
        anz = self.a_rd_nz
        b_mask = Signal(K)
        m.d.comb += b_mask.eq(Mux(dense, Const((1 << K) - 1, K), wnz & anz))
        # B joins H's cycle only within a row (one accumulator); H then issues first.
        join = Signal()
        m.d.comb += join.eq(b_valid & (~h_valid | ~b_first))

        # Select the M lowest pairs of (H, B): multiplier i takes the lowest set bit of
        # ``pending[i]`` (H's part first), each step clearing one bit (``p & (p - 1)`` on the
        # part that holds it).
        pending = []
        lo, hi = h_rem, Signal(K)
        m.d.comb += hi.eq(Mux(join, b_mask, 0))
        for i in range(M):
            pending.append((lo, hi))
            nlo = Signal(K, name=f"rem{i}_h")
            nhi = Signal(K, name=f"rem{i}_b")
            lo_any = lo != 0
            m.d.comb += [nlo.eq(lo & (lo - 1)[:K]),
                         nhi.eq(Mux(lo_any, hi, hi & (hi - 1)[:K]))]
            lo, hi = nlo, nhi
        new_h, new_b = lo, hi
        h_done = Signal()     # H (if any) issues its last pairs this cycle
        b_take = Signal()     # B issues (what fits of it) and leaves the read port
        b_rest = Signal()     # ... leaving pairs for H
        m.d.comb += [h_done.eq(new_h == 0), b_take.eq(join & h_done), b_rest.eq(new_b != 0)]
        issuing = Signal()
        m.d.comb += issuing.eq(h_valid | b_valid)

        adv = Signal()
        m.d.comb += adv.eq(s0_work & (~b_valid | b_take)
                           & ((word != 0) | (credits < self.row_credits)))
        row_start = Signal()
        m.d.comb += row_start.eq(adv & (word == 0))

        m.d.comb += [
            self.w_rd_addr.eq(waddr), self.w_rd_en.eq(adv),
            self.a_rd_addr.eq(in_base + word), self.a_rd_en.eq(adv),
            self.st_wsram_read.eq(adv), self.st_act_read.eq(adv),
        ]

        with m.If(self.start & ~active):
            m.d.sync += [
                active.eq(1),
                dense.eq(self.dense), n_rows.eq(self.n_rows), n_words.eq(self.n_words),
                in_base.eq(self.in_base), p_base.eq(self.p_base),
                s0_work.eq((self.n_rows != 0) & (self.n_words != 0)),
                row.eq(0), word.eq(0), waddr.eq(self.w_base),
            ]
        with m.Elif(adv):
            m.d.sync += waddr.eq(waddr + 1)
            with m.If(word == n_words - 1):
                m.d.sync += [word.eq(0), row.eq(row + 1)]
                with m.If(row == n_rows - 1):
                    m.d.sync += s0_work.eq(0)
            with m.Else():
                m.d.sync += word.eq(word + 1)

        with m.If(adv):
            m.d.sync += [b_valid.eq(1), b_first.eq(word == 0),
                         b_last.eq(word == n_words - 1), b_row.eq(row)]
        with m.Elif(b_take):
            m.d.sync += b_valid.eq(0)
        with m.If(b_take & b_rest):
            m.d.sync += [h_rem.eq(new_b), h_w.eq(self.w_rd_data), h_a.eq(self.a_rd_data),
                         h_last.eq(b_last), h_row.eq(b_row)]
        with m.Elif(h_valid):
            m.d.sync += h_rem.eq(new_h)

        # A row ends when its last word's last pairs issue (at most one row per cycle: a
        # row's first word never joins the previous row's H).
        row_end = Signal()
        m.d.comb += row_end.eq((h_valid & h_last & h_done) | (b_take & b_last & ~b_rest))

        # Issue-stage statistics.
        first_cycle = b_take & ~dense
        m.d.comb += [
            self.st_busy.eq(issuing),
            self.st_stall.eq(active & ~issuing & s0_work),
            self.st_macs.eq(Mux(issuing, tree_sum((lo_ != 0) | (hi_ != 0)
                                                  for lo_, hi_ in pending), 0)),
            self.st_skip_w.eq(Mux(first_cycle, popcount(~wnz, K), 0)),
            self.st_skip_a.eq(Mux(first_cycle, popcount(wnz & ~anz, K), 0)),
        ]
        with m.If(first_cycle):
            m.d.sync += [
                self.tot_skip_w.eq(self.tot_skip_w + popcount(~wnz, K)),
                self.tot_skip_a.eq(self.tot_skip_a + popcount(wnz & ~anz, K)),
            ]

        # Parameter read for a row that ends now: data arrives with S2.
        m.d.comb += [self.p_rd_addr.eq(p_base + Mux(h_valid & h_last, h_row, b_row)),
                     self.p_rd_en.eq(row_end)]

        # -- S2: multiply and accumulate ----------------------------------------------------
        s2_valid = Signal()
        s2_first = Signal()
        s2_last = Signal()
        s2_w = [Signal(signed(WB), name=f"s2_w{i}") for i in range(M)]
        s2_a = [Signal(signed(AB), name=f"s2_a{i}") for i in range(M)]
        m.d.sync += [
            s2_valid.eq(issuing),
            s2_first.eq(b_take & b_first),
            s2_last.eq(row_end),
        ]
        # Operand selection: the index of each multiplier's pair (a trailing-zero count), then
        # a two-level mux per operand (see rtl.bits: both are cheap to simulate, unlike a
        # one-hot-to-index OR tree or a variable shift of the whole word).
        # Multiplier i takes H's lowest remaining pair if H has one, else B's: one
        # trailing-zero count on the chosen mask, and one two-level mux per operand over the
        # 2K fields of (H's copy, the read port).
        hw_bw = Cat(h_w, self.w_rd_data)
        ha_ba = Cat(h_a, self.a_rd_data)
        for i, (p_h, p_b) in enumerate(pending):
            from_h = Signal(name=f"sel{i}_from_h")
            p_sel = Signal(K, name=f"sel{i}_mask")
            m.d.comb += [from_h.eq(p_h != 0), p_sel.eq(Mux(from_h, p_h, p_b))]
            any_sel = from_h | (p_b != 0)
            idx = Signal(max(1, (K - 1).bit_length()) + 1, name=f"sel{i}_idx")
            m.d.comb += idx.eq(Cat(lowest_set_index(m, p_sel, K, name=f"sel{i}")[:len(idx) - 1],
                                   ~from_h))
            w_sel = field_select(m, hw_bw, idx, WB, 2 * K, name=f"sel{i}_w")
            a_sel = field_select(m, ha_ba, idx, AB, 2 * K, name=f"sel{i}_a")
            with m.If(issuing):  # only consumed with s2_valid
                m.d.sync += [
                    s2_w[i].eq(Mux(any_sel, w_sel.as_signed(), 0)),
                    s2_a[i].eq(Mux(any_sel, a_sel.as_signed(), 0)),
                ]
        acc = Signal(signed(cfg.acc_bits))
        acc_next = Signal(signed(cfg.acc_bits))
        psum = tree_sum(s2_w[i] * s2_a[i] for i in range(M))
        m.d.comb += acc_next.eq(Mux(s2_first, 0, acc) + psum)
        with m.If(s2_valid):
            m.d.sync += acc.eq(acc_next)

        # -- R1..R4: bias, requantize, saturate ---------------------------------------------
        prm = data.View(param_record_layout(cfg), self.p_rd_data)
        r1_valid, r2_valid, r3_valid, r4_valid = (Signal(name=f"r{i}_valid") for i in range(1, 5))
        r1_t = Signal(signed(cfg.acc_bits))
        r1_mult = Signal(32)
        r1_shift = Signal(6)
        r1_write = Signal()
        r1_index = Signal(cfg.out_index_bits)
        # Each stage's data registers load only with its valid (the values are meaningless
        # without it): a compiled simulator then evaluates the wide requantization arithmetic
        # once per row instead of every cycle.
        m.d.sync += r1_valid.eq(s2_valid & s2_last)
        with m.If(s2_valid & s2_last):
            m.d.sync += [
                r1_t.eq(acc_next + prm.bias.as_signed()),  # truncation wraps at acc_bits
                r1_mult.eq(prm.mult), r1_shift.eq(prm.shift), r1_write.eq(prm.write),
                r1_index.eq(prm.out_index),
            ]
        r2_p = Signal(signed(cfg.acc_bits + 32))
        r2_rnd = Signal(64)
        r2_shift = Signal(6)
        r2_write = Signal()
        r2_index = Signal.like(r1_index)
        m.d.sync += r2_valid.eq(r1_valid)
        with m.If(r1_valid):
            m.d.sync += [
                r2_p.eq(r1_t * r1_mult),
                r2_rnd.eq((Const(1, 65) << r1_shift) >> 1),
                r2_shift.eq(r1_shift), r2_write.eq(r1_write), r2_index.eq(r1_index),
            ]
        r3_y = Signal(signed(cfg.acc_bits + 32 + 1))
        r3_write = Signal()
        r3_index = Signal.like(r1_index)
        m.d.sync += r3_valid.eq(r2_valid)
        with m.If(r2_valid):
            m.d.sync += [
                r3_y.eq((r2_p + r2_rnd) >> r2_shift),
                r3_write.eq(r2_write), r3_index.eq(r2_index),
            ]
        lo, hi = -(1 << (AB - 1)), (1 << (AB - 1)) - 1
        r4_y = Signal(signed(AB))
        r4_write = Signal()
        r4_index = Signal.like(r1_index)
        m.d.sync += r4_valid.eq(r3_valid)
        with m.If(r3_valid):
            m.d.sync += [
                r4_y.eq(Mux(r3_y > hi, hi, Mux(r3_y < lo, lo, r3_y))),
                r4_write.eq(r3_write), r4_index.eq(r3_index),
            ]

        # -- output queue and row credits ---------------------------------------------------
        m.submodules.outq = outq = fifo.SyncFIFOBuffered(width=cfg.out_index_bits + AB,
                                                        depth=self.row_credits)
        m.d.comb += [
            outq.w_en.eq(r4_valid & r4_write),
            outq.w_data.eq(Cat(r4_index, r4_y)),
            self.res_valid.eq(outq.r_rdy),
            self.res_index.eq(outq.r_data[:cfg.out_index_bits]),
            self.res_value.eq(outq.r_data[cfg.out_index_bits:]),
            outq.r_en.eq(self.res_ready),
        ]
        popped = outq.r_en & outq.r_rdy
        dropped = r4_valid & ~r4_write
        m.d.sync += credits.eq(credits + row_start - popped - dropped)
        del credit_bits

        with m.If(active & ~s0_work & ~issuing & (credits == 0) & ~self.start):
            m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active)
        return m
