"""Backend: the accelerator in Amaranth's own Python simulator.

No build step and no second process: the host routine runs as an Amaranth testbench in this
process, so any callable works as a routine (no pickling). DRAM and instruction memory are
loaded by backdoor (``ctx.set(mem.data[i], word)``, zero simulated cycles); activations go
through the host port like on the other backends. The simulator evaluates the design in Python
every cycle, so it is the slowest backend and best suited to the ``tiny`` configuration; its
strengths are zero build time and full visibility.

Timing discipline: the testbench is always parked just after a rising clock edge, with the
design settled (Amaranth testbench semantics); :meth:`AmaranthDriver.run` waits for ``done``
with one edge trigger combined with a timeout, so a program costs one testbench wake-up.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from amaranth.sim import Simulator

from rtl.config import HardwareConfig
from rtl.isa import instruction_layout

from .build import DEFAULT_DESIGN, Design
from .driver import DEFAULT_RUN_TIMEOUT_CYCLES, Driver, DriverError
from .waves import wave_format, write_gtkw

__all__ = ["AmaranthBackend", "AmaranthDriver", "run_host"]


class AmaranthDriver(Driver):
    """:class:`~sim.driver.Driver` on an Amaranth testbench context ``ctx`` and the top
    component ``top`` (which must expose ``dram_mem`` and ``imem`` memories)."""

    def __init__(self, ctx, top, cfg: HardwareConfig, counter_names, *, period: float,
                 run_timeout_cycles: int = DEFAULT_RUN_TIMEOUT_CYCLES):
        self.ctx = ctx
        self.top = top
        self.cfg = cfg
        self.counter_names = tuple(counter_names)
        self.period = period
        self.run_timeout_cycles = run_timeout_cycles
        self._cnt = [getattr(top, f"cnt_{n}") for n in self.counter_names]
        self._busy = [getattr(top, f"cnt_lane_busy_{i}") for i in range(cfg.lanes)]
        self._stall = [getattr(top, f"cnt_lane_stall_{i}") for i in range(cfg.lanes)]
        self.stats = {"runs": 0, "run_cycles": 0, "dram_words": 0, "dram_seconds": 0.0,
                      "dram_access": "backdoor"}

    def _check_idle(self, what: str) -> None:
        if self.ctx.get(self.top.busy):
            raise DriverError(f"{what}: the accelerator is busy (host ports are for idle times)")

    async def write_dram(self, words, base=0):
        self._check_idle("write_dram")
        cfg = self.cfg
        self._check_range("write_dram", base, len(words), cfg.dram_depth)
        words = self._check_words("write_dram", words, cfg.dram_word_bits)
        t0 = time.perf_counter()
        data = self.top.dram_mem.data
        for i, w in enumerate(words):
            self.ctx.set(data[base + i], w)
        self.stats["dram_words"] += len(words)
        self.stats["dram_seconds"] += time.perf_counter() - t0

    async def write_imem(self, words, base=0):
        self._check_idle("write_imem")
        cfg = self.cfg
        self._check_range("write_imem", base, len(words), cfg.imem_depth)
        words = self._check_words("write_imem", words, instruction_layout(cfg).size)
        data = self.top.imem.data
        for i, w in enumerate(words):
            self.ctx.set(data[base + i], w)

    async def write_act(self, base, words):
        self._check_idle("write_act")
        cfg = self.cfg
        self._check_range("write_act", base, len(words), cfg.act_depth)
        words = self._check_words("write_act", words, cfg.aword_bits)
        ctx, top = self.ctx, self.top
        ctx.set(top.host_act_we, 1)
        for i, w in enumerate(words):
            ctx.set(top.host_act_addr, base + i)
            ctx.set(top.host_act_wdata, w)
            await ctx.tick()
        ctx.set(top.host_act_we, 0)

    async def read_act(self, base, n):
        self._check_idle("read_act")
        self._check_range("read_act", base, n, self.cfg.act_depth)
        ctx, top = self.ctx, self.top
        out = []
        for i in range(n):
            ctx.set(top.host_act_addr, base + i)
            await ctx.tick()
            out.append(ctx.get(top.host_act_rdata))
        return out

    async def run(self, pc, arg=0):
        if not 0 <= pc < self.cfg.imem_depth:
            raise DriverError(f"run: pc {pc} outside the instruction memory of "
                              f"{self.cfg.imem_depth} words")
        ctx, top = self.ctx, self.top
        start_arg = getattr(top, "start_arg", None)   # the ARG register (issue 4), optional
        self._check_arg(pc, arg, start_arg is not None)
        if start_arg is not None:
            ctx.set(start_arg, arg)
        c0 = ctx.get(top.cnt_cycles)
        ctx.set(top.start_pc, pc)
        ctx.set(top.start, 1)
        await ctx.tick()
        ctx.set(top.start, 0)
        if not ctx.get(top.done):
            rose, _expired = await ctx.posedge(top.done).delay(
                self.run_timeout_cycles * self.period)
            if not rose:
                raise DriverError(f"run(pc={pc}): done did not rise within "
                                  f"{self.run_timeout_cycles} cycles")
        # Parked right after the edge that raised done: the same cycle the cocotb driver parks
        # in (at the following falling edge).
        cycles = (ctx.get(top.cnt_cycles) - c0) % (1 << self.cfg.counter_bits)
        self.stats["runs"] += 1
        self.stats["run_cycles"] += cycles
        fault = getattr(top, "fault", None)  # optional port: set with done on an unknown opcode
        if fault is not None and ctx.get(fault):
            raise DriverError(f"run(pc={pc}): the accelerator stopped with fault set (unknown "
                              f"opcode) after {cycles} cycles")
        return cycles

    async def counters(self):
        ctx = self.ctx
        out = {n: ctx.get(s) for n, s in zip(self.counter_names, self._cnt)}
        out["lane_busy"] = [ctx.get(s) for s in self._busy]
        out["lane_stall"] = [ctx.get(s) for s in self._stall]
        return out


class AmaranthBackend:
    """Runs host routines in Amaranth's simulator.

    Parameters
    ----------
    cfg : HardwareConfig
    design : Design
        What to simulate (default ``rtl.top.Accelerator``).
    run_timeout_cycles : int
        Bound on each :meth:`~sim.driver.Driver.run`.

    Attributes
    ----------
    stats : dict
        After :meth:`run`: ``sim_seconds``, ``run_cycles``, ``dram_seconds``...
    """

    name = "amaranth"

    def __init__(self, cfg: HardwareConfig, *, design: Design = DEFAULT_DESIGN,
                 run_timeout_cycles: int = DEFAULT_RUN_TIMEOUT_CYCLES):
        self.cfg = cfg
        self.design = design
        self.run_timeout_cycles = run_timeout_cycles
        self.stats: dict = {}

    def run(self, routine, *, waves=None, gtkw=None):
        """Run ``routine(driver)`` (any callable returning an awaitable) and return its result.

        ``waves``: write waveforms there (``.vcd``; ``.fst`` is converted from VCD with
        GTKWave's ``vcd2fst``) and a GTKWave save file next to it (or at ``gtkw``). Amaranth
        also traces every memory row, so waves of large configurations are large.
        """
        cfg = self.cfg
        fmt = wave_format(waves) if waves is not None else None
        if fmt == "fst" and shutil.which("vcd2fst") is None:
            raise RuntimeError("FST waves from the Amaranth simulator need GTKWave's vcd2fst "
                               "on PATH; ask for a .vcd file instead")
        top = self.design.instantiate(cfg)
        counters = self.design.counters
        period = 1 / cfg.clock_hz
        sim = Simulator(top)
        sim.add_clock(period)
        outcome = {}

        async def testbench(ctx):
            await ctx.tick().repeat(2)  # as long as the cocotb testbench's reset
            driver = AmaranthDriver(ctx, top, cfg, counters, period=period,
                                    run_timeout_cycles=self.run_timeout_cycles)
            t0 = time.perf_counter()
            outcome["result"] = await routine(driver)
            outcome["stats"] = dict(driver.stats, routine_seconds=time.perf_counter() - t0,
                                    final_cycles=ctx.get(top.cnt_cycles))

        sim.add_testbench(testbench)
        t0 = time.monotonic()
        if waves is None:
            sim.run()
        else:
            waves = Path(waves).resolve()
            waves.parent.mkdir(parents=True, exist_ok=True)
            vcd = waves if fmt == "vcd" else Path(tempfile.mkstemp(suffix=".vcd",
                                                                   dir=waves.parent)[1])
            try:
                with sim.write_vcd(str(vcd)):
                    sim.run()
                if fmt == "fst":
                    subprocess.run(["vcd2fst", str(vcd), str(waves)], check=True,
                                   capture_output=True)
            finally:
                if vcd != waves:
                    vcd.unlink(missing_ok=True)
            ports = ["clk", "rst"] + ["__".join(map(str, path))
                                      for path, _, _ in top.signature.flatten(top)]
            write_gtkw(waves, gtkw, title=f"zeroskip amaranth {cfg.digest}", ports=ports)
        self.stats = dict(outcome["stats"], sim_seconds=time.monotonic() - t0)
        return outcome["result"]


def run_host(cfg: HardwareConfig, routine, *, waves=None, gtkw=None, **options):
    """Run ``routine(driver)`` in Amaranth's simulator; see :meth:`AmaranthBackend.run`."""
    return AmaranthBackend(cfg, **options).run(routine, waves=waves, gtkw=gtkw)
