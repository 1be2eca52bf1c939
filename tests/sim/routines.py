"""Host routines used by the tests. They live in an importable module because the cocotb
backends pickle routines by reference into the simulator process."""

from __future__ import annotations

import os
import shutil
import time

from rtl import isa
from sim import host


def forget(excinfo):
    """Remove the run directory that a failed cocotb run leaves behind for debugging."""
    log = getattr(excinfo.value, "log", None)
    if log is not None:
        shutil.rmtree(log.parent, ignore_errors=True)


async def fail_with_value_error(driver):
    raise ValueError("deliberate failure inside the simulation")


async def write_act_out_of_range(driver):
    await driver.write_act(driver.cfg.act_depth - 1, [1, 2])


async def exit_simulator(driver):
    os._exit(3)


async def never_done(driver):
    """A LOAD of the whole DRAM (longer than the tests' run timeout)."""
    cfg = driver.cfg
    await driver.write_imem([isa.load(cfg, dram_addr=0, dram_len=cfg.dram_depth - 1, count=1,
                                      dest=0), isa.end(cfg)])
    return await driver.run(0)


async def roundtrip(driver, dram_words, act_words):
    """Write DRAM and activations, read activations back, return counters."""
    await driver.write_dram(dram_words)
    await driver.write_act(0, act_words)
    back = await driver.read_act(0, len(act_words))
    return {"act": back, "counters": await driver.counters()}


async def timed_load(driver, n):
    """Run a LOAD of ``n`` DRAM words; return its cycles and the wall time of ``run``."""
    cfg = driver.cfg
    await driver.write_imem([isa.load(cfg, dram_addr=0, dram_len=n, count=1, dest=0),
                             isa.end(cfg)])
    t0 = time.perf_counter()
    cycles = await driver.run(0)
    return {"cycles": cycles, "seconds": time.perf_counter() - t0}


async def run_bad_opcode(driver):
    """A program whose first word has an opcode the ISA does not define."""
    await driver.write_imem([0xF])
    return await driver.run(0)


async def split_load_matvec(driver, cm, x_words, n_out):
    """:func:`sim.host.run_matvec`, with the image's DRAM written in two parts (the second at a
    nonzero base address) and the programs written separately."""
    words = cm.image.dram_words
    half = len(words) // 2
    await driver.write_dram(words[:half])
    await driver.write_dram(words[half:], base=half)
    await driver.write_dram([])
    await driver.write_imem(cm.image.program_words)
    return await host.run_matvec(driver, cm, x_words, n_out, load=False) | {
        "dram_access": getattr(driver, "stats", {}).get("dram_access")}
