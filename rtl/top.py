"""The accelerator top level: controller, decompressor, lanes, memories, counters, host ports."""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .bits import lowest_set_index, nonzero_bitmap, tree_or, tree_sum
from .config import HardwareConfig
from .controller import Controller
from .decompressor import Decompressor
from .isa import LUT_ROWS, Op, instruction_layout
from .mac_lane import MacLane
from .memfmt import param_record_layout
from .vector import VectorUnit

__all__ = ["Accelerator", "COUNTERS", "LANE_COUNTERS"]

#: Scalar performance counters, each a port ``cnt_<name>``, cumulative since reset.
COUNTERS = ("cycles", "load_cycles", "matvec_cycles", "dram_bytes", "wsram_reads", "act_reads",
            "macs", "skip_zero_w", "skip_zero_a", "vector_cycles",
            *(f"instr_{op.name.lower()}" for op in Op))
#: Per-lane counters, ports ``cnt_<name>_<lane>``.
LANE_COUNTERS = ("lane_busy", "lane_stall")


class Accelerator(wiring.Component):
    """The zero-skipping sparse matrix-vector accelerator.

    Memories (``L`` = lanes): a DRAM model (``dram_depth`` words of ``B`` bytes) holding the
    compressed image; instruction memory; one weight SRAM bank and one parameter memory per lane,
    written by the decompressor; the activation SRAM, read by every lane (one read port each: in
    silicon, a broadcast or replicated buffer) and by the host, written by the host, the vector
    unit and the output arbiter (byte granularity, one write port each, ``result_ports`` for
    the arbiter).

    Nonzero bitmaps (``K`` bits) are stored beside every weight SRAM word (the decompressor
    writes the compressed word's bitmap with the dense word: the weight SRAM holds ``K`` bits
    more per word, 2.5 instead of 2 MiB of bits in the default configuration) and beside every
    activation SRAM word (written one cycle after each write of the word: the host's whole word
    or the arbiter's one element). The lanes read them with the words, so they detect zero
    operands without comparators. Timing contract: a lane read of an activation word in the
    cycle right after a write to it sees the old bitmap; programs never do that (a MATVEC's
    reads start at least 3 cycles after the previous instruction's last result is written, and
    the host writes only while idle).

    Output arbiter: up to ``result_ports`` results per cycle are written to the activation SRAM
    (one element-wide write port each, with a bitmap write port each), granted round-robin
    among the lanes with a result at their queue head; lanes stall on row credits when it falls
    behind (layers whose rows take fewer than ``L / result_ports`` cycles each are bound by it).

    Ports
    -----
    start : In(1); start_pc : In(imem_addr_bits); start_arg : In(act_addr_bits)
        Pulse to run the program at ``start_pc``; ``start_arg`` is latched into the ``ARG``
        register (``MOVE.INDEXED``) with it.
    busy, done, fault : Out(1)
        See :class:`rtl.controller.Controller`; ``done`` is a level cleared by ``start``.
    host_act_addr, host_act_wdata, host_act_we : In; host_act_rdata : Out(K*act_bits)
        Activation SRAM access while idle; reads have 1-cycle latency. Host writes have a
        write port of their own: a write while a MATVEC is writing results is not refused
        but is unsupported (the host's value wins where both write one element in a cycle).
    host_imem_addr, host_imem_wdata, host_imem_we : In
        Instruction memory writes.
    host_dram_addr, host_dram_wdata, host_dram_we : In
        DRAM model writes (the host can also load the DRAM model by backdoor).
    cnt_<name> : Out(counter_bits)
        The counters of :data:`COUNTERS`, then ``cnt_lane_busy_<l>`` and ``cnt_lane_stall_<l>``.
        ``vector_cycles`` counts the decode and unit cycles of vector instructions (as
        ``load_cycles``/``matvec_cycles`` do for theirs); ``instr_<op>`` the instructions
        decoded, by opcode.

    Attributes
    ----------
    dram_mem, imem, act_mem, lut_mem : amaranth.lib.memory.Memory
        For backdoor access in the Amaranth simulator (``ctx.set(top.dram_mem.data[i], v)``);
        ``lut_mem`` is the vector unit's LUT memory (512 int8 entries).
    act_nz_mem : amaranth.lib.memory.Memory
        The activation nonzero bitmaps (``K`` bits per activation SRAM word; bit ``k`` set when
        element ``k`` is nonzero). A backdoor write of ``act_mem`` must write the word's
        bitmap here too (:func:`rtl.bits.nonzero_bitmap`), or the lanes skip its elements.
    wsram, wnz_mem : list of amaranth.lib.memory.Memory
        Per lane: the dense weight words and their nonzero bitmaps (written together by the
        decompressor).
    """

    def __init__(self, cfg: HardwareConfig):
        if not isinstance(cfg, HardwareConfig):
            raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
        self.cfg = cfg
        members = {
            "start": In(1),
            "start_pc": In(cfg.imem_addr_bits),
            "start_arg": In(cfg.act_addr_bits),
            "busy": Out(1),
            "done": Out(1),
            "fault": Out(1),
            "host_act_addr": In(cfg.act_addr_bits),
            "host_act_wdata": In(cfg.aword_bits),
            "host_act_we": In(1),
            "host_act_rdata": Out(cfg.aword_bits),
            "host_imem_addr": In(cfg.imem_addr_bits),
            "host_imem_wdata": In(instruction_layout(cfg).size),
            "host_imem_we": In(1),
            "host_dram_addr": In(cfg.dram_addr_bits),
            "host_dram_wdata": In(cfg.dram_word_bits),
            "host_dram_we": In(1),
        }
        for name in COUNTERS:
            members[f"cnt_{name}"] = Out(cfg.counter_bits)
        for name in LANE_COUNTERS:
            for lane in range(cfg.lanes):
                members[f"cnt_{name}_{lane}"] = Out(cfg.counter_bits)
        super().__init__(members)

        # Memories and their ports are made once, here, so that testbenches can reach them.
        self.dram_mem = Memory(shape=unsigned(cfg.dram_word_bits), depth=cfg.dram_depth, init=[])
        self.imem = Memory(shape=unsigned(instruction_layout(cfg).size), depth=cfg.imem_depth,
                           init=[])
        self.act_mem = Memory(shape=unsigned(cfg.aword_bits), depth=cfg.act_depth, init=[])
        self.act_nz_mem = Memory(shape=unsigned(cfg.k), depth=cfg.act_depth, init=[])
        self.wsram = [Memory(shape=unsigned(cfg.wword_bits), depth=cfg.wsram_depth, init=[])
                      for _ in range(cfg.lanes)]
        self.wnz_mem = [Memory(shape=unsigned(cfg.k), depth=cfg.wsram_depth, init=[])
                        for _ in range(cfg.lanes)]
        self.pmem = [Memory(shape=unsigned(param_record_layout(cfg).size),
                            depth=cfg.param_depth, init=[]) for _ in range(cfg.lanes)]
        self.vector = VectorUnit(cfg)
        self.lut_mem = self.vector.lut_mem

    def elaborate(self, platform):
        cfg = self.cfg
        K, L = cfg.k, cfg.lanes
        m = Module()

        m.submodules.ctrl = ctrl = Controller(cfg)
        m.submodules.decomp = decomp = Decompressor(cfg)
        m.submodules.vector = vu = self.vector
        lanes = []
        for lane in range(L):
            m.submodules[f"lane{lane}"] = ln = MacLane(cfg)
            lanes.append(ln)

        m.submodules.dram = self.dram_mem
        m.submodules.imem = self.imem
        m.submodules.act = self.act_mem
        m.submodules.act_nz = self.act_nz_mem
        for lane in range(L):
            m.submodules[f"wsram{lane}"] = self.wsram[lane]
            m.submodules[f"wnz{lane}"] = self.wnz_mem[lane]
            m.submodules[f"pmem{lane}"] = self.pmem[lane]

        # -- controller and host control --------------------------------------------------
        m.d.comb += [
            ctrl.start.eq(self.start), ctrl.start_pc.eq(self.start_pc),
            self.busy.eq(ctrl.busy), self.done.eq(ctrl.done), self.fault.eq(ctrl.fault),
        ]
        imem_rd = self.imem.read_port()
        imem_wr = self.imem.write_port()
        m.d.comb += [
            imem_rd.addr.eq(ctrl.imem_addr), ctrl.imem_data.eq(imem_rd.data),
            imem_wr.addr.eq(self.host_imem_addr), imem_wr.data.eq(self.host_imem_wdata),
            imem_wr.en.eq(self.host_imem_we),
        ]

        # -- DRAM and decompressor ------------------------------------------------------------
        dram_rd = self.dram_mem.read_port()
        dram_wr = self.dram_mem.write_port()
        m.d.comb += [
            dram_rd.addr.eq(decomp.dram_rd_addr), dram_rd.en.eq(decomp.dram_rd_en),
            decomp.dram_rd_data.eq(dram_rd.data),
            dram_wr.addr.eq(self.host_dram_addr), dram_wr.data.eq(self.host_dram_wdata),
            dram_wr.en.eq(self.host_dram_we),
            decomp.start.eq(ctrl.ld_start), decomp.params.eq(ctrl.ld_params | ctrl.ld_lut),
            decomp.single.eq(ctrl.ld_lut),
            decomp.dram_addr.eq(ctrl.ld.dram_addr), decomp.dram_len.eq(ctrl.ld.dram_len),
            decomp.count.eq(ctrl.ld.count), decomp.dest.eq(ctrl.ld.dest),
            ctrl.ld_busy.eq(decomp.busy),
        ]

        # LOAD.LUT: the decompressor's parameter records go to the LUT memory, not the lanes.
        ld_lut = Signal()
        with m.If(ctrl.ld_start):
            m.d.sync += ld_lut.eq(ctrl.ld_lut)
        m.d.comb += [vu.lut_wr_row.eq(decomp.wr_addr[:(LUT_ROWS - 1).bit_length()]),
                     vu.lut_wr_data.eq(decomp.wr_pdata),
                     vu.lut_wr_en.eq(decomp.wr_pen & ld_lut)]

        # -- the ARG register and the vector unit -------------------------------------------
        arg = Signal(cfg.act_addr_bits)
        with m.If(self.start & ~ctrl.busy):
            m.d.sync += arg.eq(self.start_arg)
        vec_rd = self.act_mem.read_port()
        m.d.comb += [
            vu.start.eq(ctrl.vec_start), vu.op.eq(ctrl.vec_op), vu.flags.eq(ctrl.vec_flags),
            vu.args.eq(ctrl.vec), vu.arg.eq(arg), ctrl.vec_busy.eq(vu.busy),
            vec_rd.addr.eq(vu.rd_addr), vec_rd.en.eq(vu.rd_en), vu.rd_data.eq(vec_rd.data),
        ]

        # -- lanes ------------------------------------------------------------------------------
        act_host_rd = self.act_mem.read_port()
        m.d.comb += [act_host_rd.addr.eq(self.host_act_addr),
                     self.host_act_rdata.eq(act_host_rd.data)]
        for lane, ln in enumerate(lanes):
            w_rd = self.wsram[lane].read_port()
            w_wr = self.wsram[lane].write_port()
            wnz_rd = self.wnz_mem[lane].read_port()
            wnz_wr = self.wnz_mem[lane].write_port()
            anz_rd = self.act_nz_mem.read_port()
            p_rd = self.pmem[lane].read_port()
            p_wr = self.pmem[lane].write_port()
            a_rd = self.act_mem.read_port()
            mine = decomp.wr_lane == lane
            m.d.comb += [
                w_wr.addr.eq(decomp.wr_addr), w_wr.data.eq(decomp.wr_wdata),
                w_wr.en.eq(decomp.wr_wen & mine),
                wnz_wr.addr.eq(decomp.wr_addr), wnz_wr.data.eq(decomp.wr_wnz),
                wnz_wr.en.eq(decomp.wr_wen & mine),
                wnz_rd.addr.eq(ln.w_rd_addr), wnz_rd.en.eq(ln.w_rd_en), ln.w_rd_nz.eq(wnz_rd.data),
                anz_rd.addr.eq(ln.a_rd_addr), anz_rd.en.eq(ln.a_rd_en), ln.a_rd_nz.eq(anz_rd.data),
                p_wr.addr.eq(decomp.wr_addr), p_wr.data.eq(decomp.wr_pdata),
                p_wr.en.eq(decomp.wr_pen & ~ld_lut & mine),
                w_rd.addr.eq(ln.w_rd_addr), w_rd.en.eq(ln.w_rd_en), ln.w_rd_data.eq(w_rd.data),
                p_rd.addr.eq(ln.p_rd_addr), p_rd.en.eq(ln.p_rd_en), ln.p_rd_data.eq(p_rd.data),
                a_rd.addr.eq(ln.a_rd_addr), a_rd.en.eq(ln.a_rd_en), ln.a_rd_data.eq(a_rd.data),
                ln.start.eq(ctrl.mv_start), ln.dense.eq(ctrl.mv_dense),
                ln.w_base.eq(ctrl.mv.w_base), ln.p_base.eq(ctrl.mv.p_base),
                ln.n_rows.eq(ctrl.mv.n_rows), ln.n_words.eq(ctrl.mv.n_words),
                ln.in_base.eq(ctrl.mv.in_base),
            ]
        m.d.comb += ctrl.mv_busy.eq(Cat(*[ln.busy for ln in lanes]).any())

        # -- output arbiter and activation writes -----------------------------------------------
        out_base = Signal(cfg.act_addr_bits)
        with m.If(ctrl.mv_start):
            m.d.sync += out_base.eq(ctrl.mv.out_base)
        # Results and the host write through separate ports, so that nothing of the arbiter
        # depends on a primary input (a compiled simulator re-evaluates such logic on every
        # evaluation; see rtl.verilog.to_verilog). The host port is the later one: where both
        # write the same element in one cycle, the host's value is kept.
        G = cfg.result_write_ports
        act_wrs = [self.act_mem.write_port(granularity=cfg.act_bits) for _ in range(G)]
        host_wr = self.act_mem.write_port(granularity=cfg.act_bits)
        k_bits = (K - 1).bit_length()
        m.d.comb += [host_wr.addr.eq(self.host_act_addr), host_wr.data.eq(self.host_act_wdata),
                     host_wr.en.eq(Mux(self.host_act_we, Const((1 << K) - 1, K), 0))]
        # The vector unit writes whole words through a third port (it never writes while the
        # host or the arbiter does: each writes only in its own instructions or while idle).
        vec_wr = self.act_mem.write_port(granularity=cfg.act_bits)
        m.d.comb += [vec_wr.addr.eq(vu.wr_addr), vec_wr.data.eq(vu.wr_data),
                     vec_wr.en.eq(Mux(vu.wr_en, Const((1 << K) - 1, K), 0))]
        # Round-robin, G grants per cycle: grant the first G lanes with a result at or after
        # the pointer (lowest set bits of the rotated requests, clearing one per grant), then
        # move the pointer past the last one granted. Distinct lanes, so each lane's results
        # still leave in order.
        req = Cat(*[ln.res_valid for ln in lanes])
        rr = Signal(range(L))
        rot = Signal(L)
        m.d.comb += rot.eq((Cat(req, req) >> rr)[:L])
        grants = []               # (valid, lane index) per write port
        pend = rot
        for g in range(G):
            off = Signal(range(L), name=f"arb{g}_off")
            m.d.comb += off.eq(lowest_set_index(m, pend, L, name=f"arb{g}"))
            sel = Signal(range(L), name=f"arb{g}_sel")
            wrapped = rr + off
            m.d.comb += sel.eq(Mux(wrapped >= L, wrapped - L, wrapped))
            grants.append((pend != 0, sel))
            nxt = Signal(L, name=f"arb{g}_rest")
            m.d.comb += nxt.eq(pend & (pend - 1)[:L])
            pend = nxt
        for lane, ln in enumerate(lanes):
            m.d.comb += ln.res_ready.eq(tree_or([v & (sel == lane) for v, sel in grants]))
        for v, sel in grants:     # later grants override: the last one granted
            with m.If(v):
                m.d.sync += rr.eq(Mux(sel == L - 1, 0, sel + 1))
        results = []              # (valid, element, value) per write port
        for g, ((v, sel), act_wr) in enumerate(zip(grants, act_wrs)):
            w_index = Signal(cfg.out_index_bits, name=f"arb{g}_index")
            w_value = Signal(cfg.act_bits, name=f"arb{g}_value")
            m.d.comb += [w_index.eq(Array([ln.res_index for ln in lanes])[sel]),
                         w_value.eq(Array([ln.res_value for ln in lanes])[sel])]
            elem = Signal(cfg.act_addr_bits + k_bits + 1, name=f"arb{g}_elem")
            m.d.comb += elem.eq(Cat(Const(0, k_bits), out_base) + w_index)
            with m.If(v):
                m.d.comb += [act_wr.addr.eq(elem[k_bits:]), act_wr.data.eq(w_value.replicate(K)),
                             act_wr.en.eq(Const(1, K) << elem[:k_bits])]
            results.append((v, elem, w_value))

        # -- activation nonzero bitmaps ------------------------------------------------------------
        # One bit per activation, beside each activation SRAM word, read by the lanes with the
        # word. Every write of the activation SRAM updates it one cycle later (the bitmap of the
        # registered write): the host's or the vector unit's whole word, or the result's one bit.
        anz_host = self.act_nz_mem.write_port(granularity=1)
        h_we = Signal()
        h_addr = Signal.like(self.host_act_addr)
        h_nz = Signal(K)
        m.d.sync += h_we.eq(self.host_act_we)
        with m.If(self.host_act_we):
            m.d.sync += [h_addr.eq(self.host_act_addr),
                         h_nz.eq(nonzero_bitmap(self.host_act_wdata, cfg.act_bits, K))]
        m.d.comb += [anz_host.addr.eq(h_addr), anz_host.data.eq(h_nz),
                     anz_host.en.eq(Mux(h_we, Const((1 << K) - 1, K), 0))]
        anz_vec = self.act_nz_mem.write_port(granularity=1)
        v_we = Signal()
        v_addr = Signal(cfg.act_addr_bits)
        v_nz = Signal(K)
        m.d.sync += v_we.eq(vu.wr_en)
        with m.If(vu.wr_en):
            m.d.sync += [v_addr.eq(vu.wr_addr), v_nz.eq(nonzero_bitmap(vu.wr_data, cfg.act_bits, K))]
        m.d.comb += [anz_vec.addr.eq(v_addr), anz_vec.data.eq(v_nz),
                     anz_vec.en.eq(Mux(v_we, Const((1 << K) - 1, K), 0))]
        for g, (v, elem, w_value) in enumerate(results):
            anz_res = self.act_nz_mem.write_port(granularity=1)
            r_we = Signal(name=f"arb{g}_r_we")
            r_addr = Signal(cfg.act_addr_bits, name=f"arb{g}_r_addr")
            r_elem = Signal(max(1, k_bits), name=f"arb{g}_r_elem")
            r_nz = Signal(name=f"arb{g}_r_nz")
            m.d.sync += r_we.eq(v)
            with m.If(v):
                m.d.sync += [r_addr.eq(elem[k_bits:]), r_elem.eq(elem[:k_bits]),
                             r_nz.eq(w_value != 0)]
            m.d.comb += [anz_res.addr.eq(r_addr), anz_res.data.eq(r_nz.replicate(K)),
                         anz_res.en.eq(Mux(r_we, Const(1, K) << r_elem, 0))]

        # -- performance counters ----------------------------------------------------------------
        B = cfg.dram_bytes_per_cycle
        incr = {
            "cycles": Const(1, 1),
            "load_cycles": ctrl.in_load,
            "matvec_cycles": ctrl.in_matvec,
            "dram_bytes": decomp.dram_rd_en * B,
            "wsram_reads": tree_sum(ln.st_wsram_read for ln in lanes),
            "act_reads": tree_sum(ln.st_act_read for ln in lanes),
            "macs": tree_sum(ln.st_macs for ln in lanes),
            "vector_cycles": ctrl.in_vector,
        }
        for op in Op:
            incr[f"instr_{op.name.lower()}"] = ctrl.decoded & (ctrl.decoded_op == op.value)
        for name in COUNTERS:
            port = getattr(self, f"cnt_{name}")
            if name in incr:
                m.d.sync += port.eq(port + incr[name])
        # The skip counters are the sums of the lanes' running totals (equal, cycle for cycle,
        # to accumulating the lanes' per-cycle st_skip_*): the lanes evaluate their popcounts
        # only on the cycles that have something to count (see MacLane.tot_skip_w).
        m.d.comb += [
            self.cnt_skip_zero_w.eq(tree_sum(ln.tot_skip_w for ln in lanes)),
            self.cnt_skip_zero_a.eq(tree_sum(ln.tot_skip_a for ln in lanes)),
        ]
        for lane, ln in enumerate(lanes):
            busy = getattr(self, f"cnt_lane_busy_{lane}")
            stall = getattr(self, f"cnt_lane_stall_{lane}")
            m.d.sync += [busy.eq(busy + ln.st_busy), stall.eq(stall + ln.st_stall)]
        return m
