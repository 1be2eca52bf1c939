"""Simulator-side half of :mod:`benchmarks.ceiling`: cocotb tests and a host routine that only
let the clock run, timed from inside the simulator process.

Not run directly. The two cocotb tests time ``$CEILING_REPEAT`` waits of ``$CEILING_CYCLES`` cycles of a 32-bit counter
(:data:`benchmarks.ceiling.COUNTER_VERILOG`), one with cocotb's GPI clock as zeroskip's
testbench drives its design (:class:`sim.cocotb_tb.TB`), one with the clock generated in the
Verilog (Verilator ``--timing``). :func:`idle` is a host routine for :class:`sim.cocotb_backend.
CocotbBackend`: the accelerator, reset and idle, clocked for ``cycles`` cycles. Each waits with
a single simulator timer, so Python wakes up once however many cycles pass, and checks the
cycles that passed (the counter's value, the accelerator's cycle counter) before reporting.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

#: The counter designs' clock period (ns), the Verilog's ``always #5 clk = ~clk``.
PERIOD_NS = 10


async def _timed_waits(cycles: int, repeat: int, period: int, unit: str, count) -> list[dict]:
    """``repeat`` timed waits of ``cycles`` cycles each, each checked against ``count()``, the
    design's own count of cycles."""
    waits = []
    for _ in range(repeat):
        before = count()
        wall, cpu = time.perf_counter(), time.process_time()
        await Timer(cycles * period, unit=unit)
        t = {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
             "cycles": count() - before}
        if t["cycles"] != cycles:
            raise AssertionError(f"the design counted {t['cycles']} cycles in a wait of {cycles}")
        waits.append(t)
    return waits


async def _counter(dut, *, gpi_clock: bool) -> None:
    cycles, repeat = int(os.environ["CEILING_CYCLES"]), int(os.environ["CEILING_REPEAT"])
    if gpi_clock:
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)
    dut.rst.value = 1
    await Timer(2 * PERIOD_NS, unit="ns")
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    waits = await _timed_waits(cycles, repeat, PERIOD_NS, "ns", lambda: int(dut.count.value))
    Path(os.environ["CEILING_RESULT"]).write_text(json.dumps(waits))


@cocotb.test()
async def counter_gpi_clock(dut):
    """The counter clocked by cocotb's GPI clock (toggled in C, one callback per edge)."""
    await _counter(dut, gpi_clock=True)


@cocotb.test()
async def counter_hdl_clock(dut):
    """The counter clocked by its own Verilog (``always #5``): no callback per edge."""
    await _counter(dut, gpi_clock=False)


async def idle(driver, cycles: int, repeat: int = 1) -> list[dict]:
    """Host routine: let the accelerator idle (clock only, no program) for ``repeat`` timed
    waits of ``cycles`` cycles, checked against its cycle counter."""
    cnt = driver.tb.h["cnt_cycles"]
    return await _timed_waits(cycles, repeat, driver.tb.period_ps, "ps", lambda: int(cnt.value))
