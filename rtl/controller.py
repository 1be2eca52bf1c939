"""The controller: fetches instructions from instruction memory and runs them one at a time."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import HardwareConfig
from .isa import (LoadFlags, MatvecFlags, Op, instruction_layout, load_layout, matvec_layout,
                  vector_layout)

__all__ = ["Controller", "VECTOR_OPS"]

#: The operations the vector unit executes.
VECTOR_OPS = (Op.VADD, Op.VMUL, Op.LUT, Op.CELL, Op.MOVE)


class Controller(wiring.Component):
    """Instruction fetch, decode and dispatch.

    After ``start`` the controller fetches the instruction at ``start_pc`` (one cycle to present
    the address, one to decode), starts the unit it names and waits for that unit's ``busy`` to
    fall, then fetches the next. ``END`` raises ``done``; an unknown opcode raises ``done`` and
    ``fault``. Overhead: 2 cycles per instruction plus the unit's own cycles.

    Ports
    -----
    start : In(1); start_pc : In(imem_addr_bits)
        Begin executing at ``start_pc``.
    busy, done, fault : Out(1)
        Running; finished (level, cleared by ``start``); stopped on an unknown opcode.
    imem_addr : Out(imem_addr_bits); imem_data : In(instruction width)
        Instruction memory read port (1-cycle latency).
    ld : Out(load_layout); ld_params, ld_lut, ld_start : Out(1); ld_busy : In(1)
        Command to the decompressor (fields valid with ``ld_start``); ``ld_lut``: the records
        go to the LUT memory (``LOAD.LUT``).
    mv : Out(matvec_layout); mv_dense, mv_start : Out(1); mv_busy : In(1)
        Command to the lanes; ``mv_busy`` is the OR of their ``busy``.
    vec : Out(vector_layout); vec_op, vec_flags : Out(4); vec_start : Out(1); vec_busy : In(1)
        Command to the vector unit (``VADD`` .. ``MOVE``).
    in_load, in_matvec, in_vector : Out(1)
        The cycle belongs to a LOAD / MATVEC / vector instruction (for the counters).
    decoded : Out(1); decoded_op : Out(4)
        An instruction is decoded this cycle, and its opcode (the ``instr_<op>`` counters).
    """

    def __init__(self, cfg: HardwareConfig):
        if not isinstance(cfg, HardwareConfig):
            raise TypeError(f"cfg must be a HardwareConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "start": In(1),
            "start_pc": In(cfg.imem_addr_bits),
            "busy": Out(1),
            "done": Out(1),
            "fault": Out(1),
            "imem_addr": Out(cfg.imem_addr_bits),
            "imem_data": In(instruction_layout(cfg).size),
            "ld": Out(load_layout(cfg)),
            "ld_params": Out(1),
            "ld_lut": Out(1),
            "ld_start": Out(1),
            "ld_busy": In(1),
            "mv": Out(matvec_layout(cfg)),
            "mv_dense": Out(1),
            "mv_start": Out(1),
            "mv_busy": In(1),
            "vec": Out(vector_layout(cfg)),
            "vec_op": Out(4),
            "vec_flags": Out(4),
            "vec_start": Out(1),
            "vec_busy": In(1),
            "in_load": Out(1),
            "in_matvec": Out(1),
            "in_vector": Out(1),
            "decoded": Out(1),
            "decoded_op": Out(4),
        })

    def elaborate(self, platform):
        m = Module()
        pc = Signal.like(self.start_pc)
        done = Signal()
        fault = Signal()
        instr = data.View(instruction_layout(self.cfg), self.imem_data)

        m.d.comb += [
            self.imem_addr.eq(pc),
            self.done.eq(done),
            self.fault.eq(fault),
            self.ld.eq(instr.args.load),
            self.ld_params.eq((instr.flags & LoadFlags.PARAMS) != 0),
            self.ld_lut.eq((instr.flags & LoadFlags.LUT) != 0),
            self.mv.eq(instr.args.matvec),
            self.mv_dense.eq(instr.flags[0] == MatvecFlags.DENSE),
            # Every vector member has the fields of vector_layout at the same bits.
            self.vec.eq(instr.args.as_value()[:vector_layout(self.cfg).size]),
            self.vec_op.eq(instr.op),
            self.vec_flags.eq(instr.flags),
            self.decoded_op.eq(instr.op),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(self.start_pc), done.eq(0), fault.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += self.busy.eq(1)
                m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += [self.busy.eq(1), self.decoded.eq(1)]
                with m.Switch(instr.op):
                    with m.Case(Op.END):
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
                    with m.Case(Op.LOAD):
                        m.d.comb += [self.ld_start.eq(1), self.in_load.eq(1)]
                        m.d.sync += pc.eq(pc + 1)
                        m.next = "LOAD"
                    with m.Case(Op.MATVEC):
                        m.d.comb += [self.mv_start.eq(1), self.in_matvec.eq(1)]
                        m.d.sync += pc.eq(pc + 1)
                        m.next = "MATVEC"
                    with m.Case(*VECTOR_OPS):
                        m.d.comb += [self.vec_start.eq(1), self.in_vector.eq(1)]
                        m.d.sync += pc.eq(pc + 1)
                        m.next = "VECTOR"
                    with m.Default():
                        m.d.sync += [done.eq(1), fault.eq(1)]
                        m.next = "IDLE"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.in_load.eq(1)]
                with m.If(~self.ld_busy):
                    m.next = "FETCH"
            with m.State("MATVEC"):
                m.d.comb += [self.busy.eq(1), self.in_matvec.eq(1)]
                with m.If(~self.mv_busy):
                    m.next = "FETCH"
            with m.State("VECTOR"):
                m.d.comb += [self.busy.eq(1), self.in_vector.eq(1)]
                with m.If(~self.vec_busy):
                    m.next = "FETCH"
        return m
