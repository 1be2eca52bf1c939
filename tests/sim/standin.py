"""A small stand-in for ``rtl.top.Accelerator`` with the same ports, used to test the simulation
layer (build caching, drivers, backends, waves, error paths) independently of the real RTL.

It honours the top-level contract (port names and widths, ``done``/``busy`` protocol, host ports,
counters, ``dram_mem``/``imem``/``act_mem`` attributes, submodules ``ctrl``, ``decomp``,
``lane0..``) but computes something deliberately simple, modelled by :func:`golden`:

``LOAD``     reads ``dram_len`` DRAM words from ``dram_addr``, one per cycle, and adds them to a
             checksum register (modulo ``2**aword_bits``).
``MATVEC``   for ``i`` in ``range(n_words)``: ``act[out_base+i] = act[in_base+i] + checksum``
             (modulo ``2**aword_bits``), two cycles per word; ``dense`` adds ``n_rows`` idle
             cycles at the end.
``END``      raises ``done``.

Timing from ``start`` to ``done``: 1 cycle to leave idle, then per instruction 2 (fetch,
decode) plus ``dram_len + 2`` for LOAD, ``2*n_words + 1`` (``+ n_rows`` dense) for MATVEC.
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl import isa
from rtl.config import HardwareConfig

COUNTERS = ("cycles", "load_cycles", "matvec_cycles", "dram_bytes", "wsram_reads", "act_reads",
            "macs", "skip_zero_w", "skip_zero_a")


def to_verilog(cfg: HardwareConfig, *, name: str) -> str:
    """Plain Amaranth Verilog (memories inline, as Yosys writes them): fine for small configs."""
    from amaranth.back import verilog
    return verilog.convert(StandIn(cfg), name=name, emit_src=False)


def broken_verilog(cfg: HardwareConfig, *, name: str) -> str:
    """Verilog with the right ports and a syntax error (for build-failure tests)."""
    return (f"module {name}(clk, rst, start, start_pc, done, cnt_cycles);\n"
            "  input clk;\n  input rst;\n  input start;\n  input [3:0] start_pc;\n"
            "  output done;\n  output [31:0] cnt_cycles;\n  wire x = ;\nendmodule\n")


def design():
    """The :class:`sim.build.Design` of the stand-in."""
    from sim.build import Design
    return Design(factory="tests.sim.standin:StandIn", verilog="tests.sim.standin:to_verilog",
                  sources=("tests/sim/standin.py", "rtl/isa.py", "rtl/config.py"),
                  dram_memory=("dram_mem",))


class _Lane(wiring.Component):
    """Counts the cycles its ``active`` input is high (a placeholder for a MAC lane)."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({"active": In(1), "busy_count": Out(cfg.counter_bits)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.active):
            m.d.sync += self.busy_count.eq(self.busy_count + 1)
        return m


class _Decomp(wiring.Component):
    """Adds the DRAM words it is given to a checksum."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({"valid": In(1), "word": In(cfg.dram_word_bits),
                          "checksum": Out(cfg.aword_bits)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.valid):
            m.d.sync += self.checksum.eq(self.checksum + self.word)
        return m


class StandIn(wiring.Component):
    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        ports = {
            "start": In(1),
            "start_pc": In(cfg.imem_addr_bits),
            "busy": Out(1),
            "done": Out(1),
            "host_act_addr": In(cfg.act_addr_bits),
            "host_act_wdata": In(cfg.aword_bits),
            "host_act_we": In(1),
            "host_act_rdata": Out(cfg.aword_bits),
            "host_imem_addr": In(cfg.imem_addr_bits),
            "host_imem_wdata": In(isa.instruction_layout(cfg).size),
            "host_imem_we": In(1),
            "host_dram_addr": In(cfg.dram_addr_bits),
            "host_dram_wdata": In(cfg.dram_word_bits),
            "host_dram_we": In(1),
        }
        for name in COUNTERS:
            ports[f"cnt_{name}"] = Out(cfg.counter_bits)
        for lane in range(cfg.lanes):
            ports[f"cnt_lane_busy_{lane}"] = Out(cfg.counter_bits)
            ports[f"cnt_lane_stall_{lane}"] = Out(cfg.counter_bits)
        super().__init__(ports)
        self.dram_mem = Memory(shape=unsigned(cfg.dram_word_bits), depth=cfg.dram_depth, init=[])
        self.imem = Memory(shape=unsigned(isa.instruction_layout(cfg).size),
                           depth=cfg.imem_depth, init=[])
        self.act_mem = Memory(shape=unsigned(cfg.aword_bits), depth=cfg.act_depth, init=[])

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.dram_mem = self.dram_mem
        m.submodules.imem = self.imem
        m.submodules.act_mem = self.act_mem
        m.submodules.decomp = decomp = _Decomp(cfg)
        lanes = []
        for lane in range(cfg.lanes):
            m.submodules[f"lane{lane}"] = ln = _Lane(cfg)
            lanes.append(ln)
            m.d.comb += self.__dict__[f"cnt_lane_busy_{lane}"].eq(ln.busy_count)

        dram_w = self.dram_mem.write_port()
        dram_r = self.dram_mem.read_port()
        imem_w = self.imem.write_port()
        imem_r = self.imem.read_port()
        act_w = self.act_mem.write_port()
        act_r = self.act_mem.read_port()
        m.d.comb += [
            dram_w.addr.eq(self.host_dram_addr), dram_w.data.eq(self.host_dram_wdata),
            dram_w.en.eq(self.host_dram_we),
            imem_w.addr.eq(self.host_imem_addr), imem_w.data.eq(self.host_imem_wdata),
            imem_w.en.eq(self.host_imem_we),
            self.host_act_rdata.eq(act_r.data),
        ]

        cnt = {name: getattr(self, f"cnt_{name}") for name in COUNTERS}
        m.d.sync += cnt["cycles"].eq(cnt["cycles"] + 1)

        instr = data.View(isa.instruction_layout(cfg), Signal(isa.instruction_layout(cfg).size))
        m.d.comb += instr.as_value().eq(imem_r.data)
        op = Signal(isa.Op)
        flags = Signal(4)
        ld = Signal(isa.load_layout(cfg))
        mv = Signal(isa.matvec_layout(cfg))
        pc = Signal(cfg.imem_addr_bits)
        i = Signal(cfg.dram_addr_bits + 1)
        done = Signal()
        m.d.comb += [self.done.eq(done), imem_r.addr.eq(pc)]

        m.d.comb += [act_r.addr.eq(self.host_act_addr), act_w.addr.eq(self.host_act_addr),
                     act_w.data.eq(self.host_act_wdata), act_w.en.eq(self.host_act_we)]

        m.submodules.ctrl = ctrl = _Ctrl()
        with m.FSM(name="ctrl_state"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(self.start_pc), done.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.busy.eq(1), ctrl.state.eq(1)]
                m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += [self.busy.eq(1), ctrl.state.eq(2)]
                m.d.sync += [op.eq(instr.op), flags.eq(instr.flags), ld.eq(instr.args.load),
                             mv.eq(instr.args.matvec), i.eq(0), pc.eq(pc + 1)]
                with m.Switch(instr.op):
                    with m.Case(isa.Op.LOAD):
                        m.next = "LOAD"
                    with m.Case(isa.Op.MATVEC):
                        m.next = "MV_READ"
                    with m.Default():
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), ctrl.state.eq(3),
                             dram_r.addr.eq(ld.dram_addr + i)]
                m.d.sync += cnt["load_cycles"].eq(cnt["load_cycles"] + 1)
                valid = Signal()
                m.d.sync += valid.eq(0)
                with m.If(i < ld.dram_len):
                    m.d.sync += [i.eq(i + 1), valid.eq(1),
                                 cnt["dram_bytes"].eq(cnt["dram_bytes"] + cfg.dram_bytes_per_cycle)]
                with m.Elif(~valid):
                    m.next = "FETCH"
                m.d.comb += [decomp.valid.eq(valid), decomp.word.eq(dram_r.data)]
            with m.State("MV_READ"):
                m.d.comb += [self.busy.eq(1), ctrl.state.eq(4)]
                m.d.sync += cnt["matvec_cycles"].eq(cnt["matvec_cycles"] + 1)
                for ln in lanes:
                    m.d.comb += ln.active.eq(1)
                with m.If(i < mv.n_words):
                    m.d.comb += act_r.addr.eq(mv.in_base + i)
                    m.d.sync += cnt["act_reads"].eq(cnt["act_reads"] + 1)
                    m.next = "MV_WRITE"
                with m.Elif((flags[0] == 1) & (i < mv.n_words + mv.n_rows)):
                    m.d.sync += i.eq(i + 1)
                with m.Else():
                    m.next = "FETCH"
            with m.State("MV_WRITE"):
                m.d.comb += [self.busy.eq(1), ctrl.state.eq(5),
                             act_w.addr.eq(mv.out_base + i),
                             act_w.data.eq(act_r.data + decomp.checksum), act_w.en.eq(1)]
                m.d.sync += [cnt["matvec_cycles"].eq(cnt["matvec_cycles"] + 1), i.eq(i + 1),
                             cnt["macs"].eq(cnt["macs"] + cfg.k)]
                for ln in lanes:
                    m.d.comb += ln.active.eq(1)
                m.next = "MV_READ"
        return m


class _Ctrl(wiring.Component):
    """Holds the controller state for the waves (a placeholder for the controller)."""

    def __init__(self):
        super().__init__({"state": In(4)})

    def elaborate(self, platform):
        m = Module()
        seen = Signal(4)
        m.d.sync += seen.eq(self.state)
        return m
