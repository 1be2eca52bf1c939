"""Backend: the accelerator's Verilog in Verilator or Icarus, driven by cocotb.

The parent process (this module) makes sure the simulator model is built
(:func:`sim.build.sim_build`, cached), writes a job file (the pickled host routine, the
configuration, the Verilog description) into a fresh run directory under
``build/sim/runs/``, and runs cocotb's Python runner with :mod:`sim.cocotb_tb` as the test
module. The cocotb test runs the routine and pickles its outcome; this module reads it back and
returns the routine's result, or raises :class:`SimulationError` carrying the routine's
traceback or, if the simulator died, the tail of its log.

Routines cross a process boundary: they are pickled *by reference*, so pass a module-level
coroutine function or a :func:`functools.partial` of one, with picklable arguments.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import sys
import time
import uuid
from pathlib import Path

from rtl.config import HardwareConfig

from . import build as _build
from .build import DEFAULT_DESIGN, BuildError, Design
from .driver import DEFAULT_RUN_TIMEOUT_CYCLES
from .waves import wave_format, write_gtkw

__all__ = ["CocotbBackend", "SimulationError", "run_host", "DEFAULT_RUN_TIMEOUT_CYCLES"]



class SimulationError(RuntimeError):
    """The simulation did not produce a result: the host routine raised (``error_type``,
    ``traceback`` hold the details from inside the simulator process) or the simulator itself
    failed (``log`` names its log file)."""

    def __init__(self, message, *, error_type=None, traceback=None, log=None):
        super().__init__(message)
        self.error_type = error_type
        self.traceback = traceback
        self.log = log


def _period_ps(cfg: HardwareConfig) -> int:
    period = round(1e12 / cfg.clock_hz)
    return max(2, period + (period & 1))  # the GPI clock needs an even number of steps


@contextlib.contextmanager
def _import_path_and_env(**env):
    """The runner passes ``sys.path`` to the simulator as ``PYTHONPATH``: make sure the
    repository root is on it (absolute), and set ``env`` for the duration of the run."""
    root = str(_build.REPO_ROOT)
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(root)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class CocotbBackend:
    """Runs host routines in ``simulator`` (``"verilator"`` or ``"icarus"``) through cocotb.

    Parameters
    ----------
    cfg : HardwareConfig
    simulator : str
    design : Design
        What to build (default: ``rtl.top.Accelerator``).
    dram_backdoor : bool
        Load DRAM through the memory's VPI handle when possible (default) instead of one word
        per cycle through the ``host_dram`` port.
    run_timeout_cycles : int
        Bound on each :meth:`~sim.driver.Driver.run`.
    keep_runs : bool
        Keep the run directory (job, log, results) after a successful run; failed runs are
        always kept.

    Attributes
    ----------
    stats : dict
        After :meth:`run`: ``build_seconds``, ``sim_seconds`` (wall time of the simulator
        process), ``routine_seconds`` (wall time of the routine inside it), ``run_cycles``
        (cycles of all :meth:`Driver.run` calls), ``dram_access`` (``"backdoor"`` or
        ``"port"``), ``dram_seconds``...
    """

    name = "cocotb"

    def __init__(self, cfg: HardwareConfig, simulator: str, *, design: Design = DEFAULT_DESIGN,
                 dram_backdoor: bool = True,
                 run_timeout_cycles: int = DEFAULT_RUN_TIMEOUT_CYCLES, keep_runs: bool = False):
        if simulator not in _build.SIMULATORS:
            raise ValueError(f"unknown simulator {simulator!r}; choose one of "
                             f"{', '.join(_build.SIMULATORS)}")
        self.cfg = cfg
        self.simulator = simulator
        self.name = simulator
        self.design = design
        self.dram_backdoor = dram_backdoor
        self.run_timeout_cycles = run_timeout_cycles
        self.keep_runs = keep_runs
        self.stats: dict = {}

    def build(self, *, waves: str | None = None) -> _build.SimBuild:
        """Build (or find cached) the simulator model; ``BuildError`` says what is missing."""
        return _build.sim_build(self.cfg, self.simulator, waves=waves, design=self.design)

    def run(self, routine, *, waves=None, gtkw=None):
        """Run ``routine(driver)`` in a fresh simulation and return its result.

        Parameters
        ----------
        routine
            A picklable callable returning an awaitable: a module-level ``async def`` taking
            the driver, or a ``functools.partial`` of one.
        waves : path, optional
            Write waveforms there (``.vcd`` or ``.fst``), and a GTKWave save file next to it
            (or at ``gtkw``).

        Raises
        ------
        BuildError
            The simulator is missing or the model does not compile.
        SimulationError
            The routine raised inside the simulation, or the simulator failed.
        """
        target = getattr(routine, "func", routine)
        if getattr(target, "__module__", None) == "__main__":
            raise TypeError(f"the routine {getattr(target, '__qualname__', target)!r} is defined "
                            f"in __main__, which the {self.simulator} process cannot import; "
                            "define it in an importable module")
        try:
            pickle.dumps(routine)
        except Exception as e:  # noqa: BLE001 - pickling raises several types
            raise TypeError(f"the routine must be picklable to reach the {self.simulator} "
                            f"process (a module-level async function or a functools.partial "
                            f"of one, with picklable arguments): {e}") from None
        fmt = wave_format(waves) if waves is not None else None
        t0 = time.monotonic()
        sb = self.build(waves=fmt)
        build_seconds = time.monotonic() - t0

        runs = _build.build_root() / "sim" / "runs"
        run_dir = runs / f"{self.simulator}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        run_dir.mkdir(parents=True)
        job_path = run_dir / "job.pkl"
        result_path = run_dir / "result.pkl"  # the name sim.cocotb_tb writes
        log = run_dir / "sim.log"
        job = {"cfg": self.cfg.to_dict(), "info": sb.verilog.info, "period_ps": _period_ps(self.cfg),
               "dram_backdoor": self.dram_backdoor, "run_timeout_cycles": self.run_timeout_cycles}
        test_args, plusargs = [], []
        # Bulk DRAM loads by $readmemh where the Verilog has the port for it (rtl.verilog).
        from rtl.verilog import DRAM_READMEM_PLUSARG, DRAM_READMEM_PORT
        if self.dram_backdoor and DRAM_READMEM_PORT in sb.verilog.info["ports"]:
            hex_file = run_dir / "dram.hex"
            job["dram_readmem"] = {"port": DRAM_READMEM_PORT, "file": str(hex_file)}
            plusargs.append(f"+{DRAM_READMEM_PLUSARG}={hex_file}")
        job["routine"] = routine
        with open(job_path, "wb") as f:
            pickle.dump(job, f)

        # cocotb installs pytest's assertion rewriting for every module imported in the simulator
        # ("*.py" by default): torch and the model's modules were parsed and rewritten on every
        # run, ~20 s of start-up. The testbench has no asserts worth rewriting: switch it off.
        # One OpenMP thread: the reference's small torch ops gain nothing from a second one,
        # whose spin-waiting took ~5 % of the simulator process and the core it runs beside.
        env = {"ZEROSKIP_JOB": str(job_path), "COCOTB_REWRITE_ASSERTION_FILES": "",
               "OMP_NUM_THREADS": "1"}
        if waves is not None:
            waves = Path(waves).resolve()
            waves.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                waves.unlink()
            if self.simulator == "verilator":
                test_args += ["--trace-file", str(waves)]
            else:
                plusargs.append(f"+dumpfile_path={waves}")
                if fmt == "vcd":
                    # The runner appends -fst; vvp obeys the last format flag.
                    env["SIM_CMD_SUFFIX"] = "-vcd"

        runner = _build.get_runner(self.simulator)
        t1 = time.monotonic()
        failure = None
        with _import_path_and_env(**env):
            try:
                runner.test(test_module="sim.cocotb_tb", hdl_toplevel=_build.TOPLEVEL,
                            hdl_toplevel_lang="verilog",
                            build_dir=sb.directory, test_dir=run_dir,
                            results_xml=str(run_dir / "results.xml"),
                            waves=waves is not None, test_args=test_args, plusargs=plusargs,
                            log_file=log, extra_env=env)
            except SystemExit as e:  # the runner exits when a test fails under pytest
                failure = f"simulator exited with status {e.code}"
            except Exception as e:  # noqa: BLE001
                failure = f"{type(e).__name__}: {e}"
        sim_seconds = time.monotonic() - t1

        if not result_path.exists():
            raise SimulationError(
                f"{self.simulator} simulation produced no result "
                f"({failure or 'no result file'}); run directory {run_dir}; log tail:\n"
                f"{_build._tail(log)}", log=log)
        with open(result_path, "rb") as f:
            outcome = pickle.load(f)
        if not outcome["ok"]:
            raise SimulationError(
                f"host routine failed in {self.simulator}: {outcome['error_type']}: "
                f"{outcome['error']}\n--- traceback inside the simulator ---\n"
                f"{outcome['traceback']}(run directory {run_dir})",
                error_type=outcome["error_type"], traceback=outcome["traceback"], log=log)
        if waves is not None:
            write_gtkw(waves, gtkw, title=f"zeroskip {self.simulator} {self.cfg.digest}",
                       ports=sb.verilog.info["ports"])
        self.stats = dict(outcome["stats"], build_seconds=build_seconds,
                          sim_seconds=sim_seconds, build_cached=sb.cached,
                          build_dir=str(sb.directory))
        if failure is None and not self.keep_runs:
            shutil.rmtree(run_dir, ignore_errors=True)
        return outcome["result"]


def run_host(cfg: HardwareConfig, routine, *, simulator: str = "verilator", waves=None,
             gtkw=None, **options):
    """Run ``routine(driver)`` on ``simulator``; see :meth:`CocotbBackend.run`. ``options`` go
    to :class:`CocotbBackend`."""
    return CocotbBackend(cfg, simulator, **options).run(routine, waves=waves, gtkw=gtkw)


__all__ += ["BuildError"]
