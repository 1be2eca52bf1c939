"""The cocotb test module: runs one host routine on the accelerator in Verilator or Icarus.

Not run directly: :mod:`sim.cocotb_backend` writes a job file, points ``ZEROSKIP_JOB`` at it and
starts the simulator through cocotb's runner with this module as the test module. The single
test :func:`run_job` builds a :class:`TB` on the DUT (clock, reset, handles looked up once),
awaits the routine with a :class:`CocotbDriver`, and writes the outcome (result or traceback)
to the job's result file, which the parent process reads back.

Timing discipline: every driver operation starts and ends parked at a *falling* clock edge,
where all values of the current cycle are settled and inputs can be changed safely for the next
rising edge. The clock is a GPI clock (toggled in C inside the simulator), and :meth:`run` waits
for ``done`` with a single trigger, so a program costs Python a handful of wake-ups however many
cycles it takes.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, ReadWrite, RisingEdge, with_timeout
from cocotb.triggers import SimTimeoutError

from rtl.config import HardwareConfig
from sim.driver import Driver, DriverError

__all__ = ["TB", "CocotbDriver", "run_job"]


def _int(handle) -> int:
    return int(handle.value)  # unsigned for vectors; Logic for 1-bit signals


def _find_array(dut, path):
    """The array handle at ``path`` below ``dut``.

    Looked up by iterating each scope's children rather than by name: Icarus resolves the name
    ``dram.mem.mem`` (an array ``mem`` inside an instance ``mem``) to the instance.
    """
    from cocotb.handle import ArrayObject
    h = dut
    for i, part in enumerate(path):
        last = i == len(path) - 1
        match = [c for c in h if c._name == part
                 and (isinstance(c, ArrayObject) if last else not isinstance(c, ArrayObject))]
        if not match:
            raise LookupError(f"no {'array' if last else 'scope'} {part!r} in {h._path}")
        h = match[0]
    h[0]  # element handles are reachable
    return h


class TB:
    """Clock, reset and handles of one ``zeroskip_top`` instance.

    Parameters
    ----------
    dut
        cocotb's handle on the toplevel.
    cfg : HardwareConfig
    info : dict
        The Verilog description from :func:`sim.build.verilog` (ports, DRAM memory path,
        counter names).
    period_ps : int
        Clock period.
    dram_backdoor : bool
        Load DRAM through the memory array's VPI handle (if the Verilog has one) instead of the
        ``host_dram`` port.
    dram_readmem : dict, optional
        ``{"port", "file"}``: the Verilog loads its DRAM model from the hex file ``file`` by
        ``$readmemh`` on a rising edge with ``port`` high (:func:`rtl.verilog.to_verilog`);
        used instead of the VPI backdoor (one write per word, ~30 us each).
    """

    def __init__(self, dut, cfg: HardwareConfig, info: dict, *, period_ps: int,
                 dram_backdoor: bool = True, dram_readmem: dict | None = None):
        self.dut = dut
        self.cfg = cfg
        self.info = info
        self.period_ps = period_ps
        # Look every handle up once.
        self.h = {name: getattr(dut, name) for name in info["ports"]}
        self.clk = self.h["clk"]
        self.busy = self.h.get("busy")
        self.fault = self.h.get("fault")  # optional: set with done on an unknown opcode
        self.counter_names = tuple(info["counters"])
        self.cnt = [self.h[f"cnt_{n}"] for n in self.counter_names]
        self.lane_busy = [self.h[f"cnt_lane_busy_{i}"] for i in range(cfg.lanes)]
        self.lane_stall = [self.h[f"cnt_lane_stall_{i}"] for i in range(cfg.lanes)]
        self.dram_mem = None
        self.dram_access = "port"
        self.dram_readmem = None
        path = info.get("dram_memory")
        if dram_readmem and dram_readmem["port"] in self.h:
            self.dram_readmem = (self.h[dram_readmem["port"]], Path(dram_readmem["file"]))
            self.dram_access = "readmemh"
        elif dram_backdoor and path:
            try:
                self.dram_mem = _find_array(dut, path)
                self.dram_access = "backdoor"
            except (AttributeError, IndexError, KeyError, TypeError, LookupError) as e:
                self.dram_access = (f"port (the DRAM array {'.'.join(path)} is not reachable "
                                    f"through VPI: {type(e).__name__}: {e})")
        self.clock = Clock(self.clk, period_ps, unit="ps", impl="gpi")

    async def start(self, reset_cycles: int = 2) -> None:
        """Start the clock, reset the design for its first ``reset_cycles`` rising edges, park
        at the falling edge after the first edge out of reset.

        A design whose reset lags ``rst`` (``info["reset_latency"]`` edges, see
        :func:`rtl.verilog.to_verilog`) gets ``rst`` released that many edges earlier, so the
        design sees the same reset cycles and the same clock edge count either way.
        """
        lag = int(self.info.get("reset_latency", 0))
        if reset_cycles <= lag:
            raise ValueError(f"reset_cycles must exceed the design's reset latency {lag}")
        for name, port in self.info["ports"].items():
            if port["dir"] == "in" and name != "clk":
                self.h[name].value = 0
        self.h["rst"].value = 1
        self.clock.start(start_high=False)
        for _ in range(reset_cycles - lag):
            await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        self.h["rst"].value = 0
        for _ in range(1 + lag):
            await FallingEdge(self.clk)


class CocotbDriver(Driver):
    """:class:`~sim.driver.Driver` on a :class:`TB`.

    ``run_timeout_cycles`` bounds each :meth:`run`; the wait is a simulator timer, not a loop.
    """

    def __init__(self, tb: TB, *, run_timeout_cycles: int):
        self.tb = tb
        self.cfg = tb.cfg
        self.counter_names = tb.counter_names
        self.run_timeout_cycles = run_timeout_cycles
        self.stats = {"runs": 0, "run_cycles": 0, "dram_words": 0, "dram_seconds": 0.0,
                      "dram_access": tb.dram_access}

    def _check_idle(self, what: str) -> None:
        if self.tb.busy is not None and _int(self.tb.busy):
            raise DriverError(f"{what}: the accelerator is busy (host ports are for idle times)")

    async def _write_port(self, prefix: str, base: int, words: list[int]) -> None:
        h = self.tb.h
        addr, wdata, we = h[f"{prefix}_addr"], h[f"{prefix}_wdata"], h[f"{prefix}_we"]
        we.value = 1
        for i, w in enumerate(words):
            addr.value = base + i
            wdata.value = w
            await FallingEdge(self.tb.clk)
        we.value = 0

    async def write_dram(self, words, base=0):
        self._check_idle("write_dram")
        cfg = self.cfg
        self._check_range("write_dram", base, len(words), cfg.dram_depth)
        words = self._check_words("write_dram", words, cfg.dram_word_bits)
        t0 = time.perf_counter()
        if self.tb.dram_readmem is not None:
            port, file = self.tb.dram_readmem
            if words:
                digits = -(-cfg.dram_word_bits // 4)
                file.write_text(f"@{base:x}\n" + "".join(f"{w:0{digits}x}\n" for w in words))
                port.value = 1                   # $readmemh on the next rising edge
            await FallingEdge(self.tb.clk)
            port.value = 0
        elif self.tb.dram_mem is not None:
            mem = self.tb.dram_mem
            for i, w in enumerate(words):
                mem[base + i].value = w
            await ReadWrite()       # apply the scheduled writes...
            await FallingEdge(self.tb.clk)  # ...and park again
        else:
            await self._write_port("host_dram", base, words)
        self.stats["dram_words"] += len(words)
        self.stats["dram_seconds"] += time.perf_counter() - t0

    async def write_imem(self, words, base=0):
        self._check_idle("write_imem")
        cfg = self.cfg
        self._check_range("write_imem", base, len(words), cfg.imem_depth)
        from rtl.isa import instruction_layout
        words = self._check_words("write_imem", words, instruction_layout(cfg).size)
        await self._write_port("host_imem", base, words)

    async def write_act(self, base, words):
        self._check_idle("write_act")
        cfg = self.cfg
        self._check_range("write_act", base, len(words), cfg.act_depth)
        words = self._check_words("write_act", words, cfg.aword_bits)
        await self._write_port("host_act", base, words)

    async def read_act(self, base, n):
        self._check_idle("read_act")
        self._check_range("read_act", base, n, self.cfg.act_depth)
        h = self.tb.h
        addr, rdata = h["host_act_addr"], h["host_act_rdata"]
        out = []
        for i in range(n):
            addr.value = base + i
            await FallingEdge(self.tb.clk)
            out.append(_int(rdata))
        return out

    async def run(self, pc, arg=0):
        if not 0 <= pc < self.cfg.imem_depth:
            raise DriverError(f"run: pc {pc} outside the instruction memory of "
                              f"{self.cfg.imem_depth} words")
        h = self.tb.h
        self._check_arg(pc, arg, "start_arg" in h)
        if "start_arg" in h:
            h["start_arg"].value = arg
        c0 = _int(h["cnt_cycles"])
        h["start_pc"].value = pc
        h["start"].value = 1
        await RisingEdge(self.tb.clk)
        h["start"].value = 0
        try:
            await with_timeout(RisingEdge(h["done"]),
                               self.run_timeout_cycles * self.tb.period_ps, "ps")
        except SimTimeoutError:
            raise DriverError(f"run(pc={pc}): done did not rise within "
                              f"{self.run_timeout_cycles} cycles") from None
        await ReadOnly()
        c1 = _int(h["cnt_cycles"])
        fault = self.tb.fault is not None and _int(self.tb.fault)
        await FallingEdge(self.tb.clk)
        cycles = (c1 - c0) % (1 << self.cfg.counter_bits)
        self.stats["runs"] += 1
        self.stats["run_cycles"] += cycles
        if fault:
            raise DriverError(f"run(pc={pc}): the accelerator stopped with fault set (unknown "
                              f"opcode) after {cycles} cycles")
        return cycles

    async def counters(self):
        tb = self.tb
        out = {name: _int(h) for name, h in zip(tb.counter_names, tb.cnt)}
        out["lane_busy"] = [_int(h) for h in tb.lane_busy]
        out["lane_stall"] = [_int(h) for h in tb.lane_stall]
        return out


def _write_result(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(payload, f)
    os.replace(tmp, path)


@cocotb.test()
async def run_job(dut):
    """Run the host routine named by the job file ``$ZEROSKIP_JOB``."""
    job_path = Path(os.environ["ZEROSKIP_JOB"])
    result_path = job_path.with_name("result.pkl")
    t0 = time.perf_counter()
    try:
        with open(job_path, "rb") as f:
            job = pickle.load(f)
        cfg = HardwareConfig.from_dict(job["cfg"])
        tb = TB(dut, cfg, job["info"], period_ps=job["period_ps"],
                dram_backdoor=job["dram_backdoor"], dram_readmem=job.get("dram_readmem"))
        await tb.start()
        driver = CocotbDriver(tb, run_timeout_cycles=job["run_timeout_cycles"])
        t1 = time.perf_counter()
        result = await job["routine"](driver)
        stats = dict(driver.stats, setup_seconds=t1 - t0, routine_seconds=time.perf_counter() - t1,
                     final_cycles=_int(tb.h["cnt_cycles"]))
        _write_result(result_path, {"ok": True, "result": result, "stats": stats})
    except BaseException as e:
        _write_result(result_path, {"ok": False, "error_type": type(e).__name__,
                                    "error": str(e), "traceback": traceback.format_exc()})
        raise
