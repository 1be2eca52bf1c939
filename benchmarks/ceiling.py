"""Benchmark: the speed ceiling of cocotb + Verilator on this machine, against the accelerator's.

    .venv/bin/python benchmarks/ceiling.py [--cycles N] [--configs tiny,default] [--repeat N] [--json] [--readme [FILE]]

Issues 2 and 4 ask for >= 1,000,000 simulated cycles per wall second under cocotb + Verilator.
This measures what the harness itself allows, with designs that do (almost) nothing:

* a 32-bit counter clocked by cocotb's GPI clock, the way zeroskip's testbench clocks the
  accelerator (:class:`sim.cocotb_tb.TB`): the cost of cocotb's per-edge callback and
  Verilator's evaluation loop, per cycle, with next to no design;
* the same counter clocked by its own Verilog (``always #5 clk = ~clk``, Verilator
  ``--timing``): no callback per edge, only cocotb's Verilator main loop per time step;
* the accelerator (each configuration of ``--configs``), reset and idle, clock only, through the
  project's own backend (:class:`sim.cocotb_backend.CocotbBackend`).

Every figure is cycles per wall second (and per CPU second of the simulator process) over one
timer wait of ``--cycles`` cycles, the fastest of ``--repeat`` waits in each of ``--rounds``
simulator runs alternated over the designs (the least disturbed by the rest of the machine), measured inside the simulator, so start-up
and builds are excluded; every wait is checked against the design's own count of cycles. Builds are cached
under ``build/bench/ceiling/`` (the counter) and ``build/sim/`` (the accelerator). Writes
``build/bench/ceiling.json``; ``--readme`` rewrites the README's ``ceiling`` block.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

TARGET = 1_000_000

COUNTER_VERILOG = """\
`timescale 1ns/1ps
module ceiling_counter(input clk, input rst, output reg [31:0] count);
  always @(posedge clk) if (rst) count <= 0; else count <= count + 1;
endmodule
"""

#: The same counter with its clock inside (Verilator needs ``--timing`` for the delay).
COUNTER_HDL_CLOCK_VERILOG = """\
`timescale 1ns/1ps
module ceiling_counter_clk(input rst, output reg [31:0] count, output reg clk);
  initial clk = 0;
  always #5 clk = ~clk;
  always @(posedge clk) if (rst) count <= 0; else count <= count + 1;
endmodule
"""


class CeilingError(Exception):
    """A measurement failed (the message is one line)."""


def _counter(work: Path, *, hdl_clock: bool, cycles: int, repeat: int) -> list[dict]:
    """Build (cached) and time one counter variant; returns the simulator's own timing."""
    from cocotb_tools.runner import get_runner

    from sim.build import VERILATOR_ARGS, VERILATOR_MAKEFLAGS, _environ, verilator_bin_dir

    name = "ceiling_counter_clk" if hdl_clock else "ceiling_counter"
    work.mkdir(parents=True, exist_ok=True)
    # Built as sim.build builds the accelerator: its Verilator and C++ flags, and only the
    # ports VPI-visible (a control file, since the flags cancel cocotb's --public-flat-rw).
    # Files are rewritten only when they change, so the runner's build stays cached.
    src, vlt = work / f"{name}.v", work / f"{name}.vlt"
    for path, text in ((src, COUNTER_HDL_CLOCK_VERILOG if hdl_clock else COUNTER_VERILOG),
                       (vlt, "`verilator_config\n" + "".join(
                           f'public_flat_rw -module "{name}" -var "{port}"\n'
                           for port in ("clk", "rst", "count")))):
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    args = list(VERILATOR_ARGS)
    if hdl_clock:
        # Verilator's timing support runs on C++20 coroutines, which g++ 12 needs asked for.
        args += ["--timing", "-CFLAGS", "-fcoroutines"]
    result = work / f"{name}.result.json"
    result.unlink(missing_ok=True)
    env = {"PATH": f"{verilator_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
           "MAKEFLAGS": " ".join(VERILATOR_MAKEFLAGS),
           "CEILING_CYCLES": str(cycles), "CEILING_REPEAT": str(repeat),
           "CEILING_RESULT": str(result)}
    try:
        with _environ(**env):
            runner = get_runner("verilator")
            runner.build(sources=[vlt, src], hdl_toplevel=name, build_dir=work / name,
                         build_args=args, timescale=("1ns", "1ps"), log_file=work / f"{name}.log")
            # The runner hands sys.path (the repository root included) to the simulator.
            runner.test(hdl_toplevel=name, test_module="benchmarks.ceiling_tb",
                        test_dir=work / name, build_dir=work / name,
                        results_xml=str(work / f"{name}.results.xml"),
                        testcase="counter_hdl_clock" if hdl_clock else "counter_gpi_clock",
                        log_file=work / f"{name}.test.log")
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the runner exits when a test fails
                                             # under pytest, raises RuntimeError otherwise
        raise CeilingError(f"the {name} run failed ({type(e).__name__}: {e}); see "
                           f"{work / name}*.log") from None
    if not result.exists():
        raise CeilingError(f"the {name} run wrote no result; see {work / (name + '.test.log')}")
    return json.loads(result.read_text())


def _accelerator_idle(preset: str, cycles: int, repeat: int) -> list[dict]:
    from benchmarks.ceiling_tb import idle
    from rtl.config import HardwareConfig
    from sim.cocotb_backend import CocotbBackend

    backend = CocotbBackend(HardwareConfig.preset(preset), "verilator")
    return backend.run(functools.partial(idle, cycles=cycles, repeat=repeat))


def _row(label: str, clock: str, waits: list[dict]) -> dict:
    """The fastest of the waits (the least disturbed by the rest of the machine), and all."""
    best = min(waits, key=lambda t: t["seconds"])
    return {"design": label, "clock": clock, "cycles": best["cycles"], "seconds": best["seconds"],
            "cpu_seconds": best["cpu_seconds"],
            "cycles_per_second": best["cycles"] / best["seconds"],
            "cycles_per_cpu_second": best["cycles"] / max(best["cpu_seconds"], 1e-9),
            "waits": waits}


def measure(*, cycles: int, repeat: int, configs: list[str], work: Path, rounds: int = 2,
            progress: bool = True) -> dict:
    """``rounds`` rounds over every design (so a slow spell of the machine hits one round of
    each, not every wait of one design), ``repeat`` waits per design and round."""
    steps = [("counter", "gpi"), ("counter", "hdl")] + [(c, "gpi") for c in configs]
    waits = {step: [] for step in steps}
    bar = tqdm(total=rounds * len(steps), desc="ceiling", unit="run", disable=not progress)
    for _ in range(rounds):
        for design, clock in steps:
            if design == "counter":
                r = _counter(work, hdl_clock=clock == "hdl", cycles=cycles, repeat=repeat)
            else:
                r = _accelerator_idle(design, cycles, repeat)
            waits[(design, clock)] += r
            bar.update()
    bar.close()
    rows = [_row("32-bit counter" if design == "counter"
                 else f"accelerator (`{design}` config), idle",
                 {"gpi": "cocotb GPI clock (as zeroskip's testbench)",
                  "hdl": "Verilog clock (`--timing`)"}[clock], waits[(design, clock)])
            for design, clock in steps]
    return {"cycles": cycles, "repeat": repeat, "rounds": rounds, "target": TARGET, "rows": rows,
            "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def markdown(res: dict) -> str:
    lines = ["| design | clock | cycles | wall s | cycles / wall s | cycles / CPU s |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['design']} | {r['clock']} | {r['cycles']:,} | {r['seconds']:.2f} | "
                     f"{r['cycles_per_second']:,.0f} | {r['cycles_per_cpu_second']:,.0f} |")
    gpi, hdl = res["rows"][0], res["rows"][1]
    budget = 1e6 / res["target"]  # µs per cycle at the target

    def left(r):
        return budget - 1e6 / r["cycles_per_second"]

    text = [f"Target (issues 2 and 4): {res['target']:,} cycles per wall second, "
            f"{budget:.2f} µs per cycle. The harness with next to no design, clocked as "
            f"zeroskip clocks its accelerator, takes {1e6 / gpi['cycles_per_second']:.2f} µs "
            f"per cycle ({left(gpi):.2f} µs left for a design's evaluation); with the clock "
            f"inside the Verilog, {1e6 / hdl['cycles_per_second']:.2f} µs "
            f"({left(hdl):.2f} µs left)."]
    for r in res["rows"][2:]:
        text.append(f"{r['design'][0].upper() + r['design'][1:]}: {1e6 / r['cycles_per_second']:.2f} "
                    f"µs per cycle ({r['cycles_per_second'] / res['target']:.2f}x the target).")
    text.append(f"Fastest of {res['rounds']} x {res['repeat']} waits (rounds alternated over "
                f"the designs) of {res['cycles']:,} cycles each; load "
                f"average {res['machine']['load_average'][0]:.2f} on "
                f"{res['machine']['cpus']} CPUs at the start.")
    return "\n".join(lines) + "\n\n" + " ".join(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--cycles", type=int, default=2_000_000,
                    help="cycles per measurement (default 2,000,000)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed waits per design, the fastest reported (default 3)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds over all designs, alternated (default 2)")
    ap.add_argument("--configs", default="tiny,default",
                    help="accelerator presets to measure idle, comma-separated ('' for none; "
                         "default tiny,default)")
    ap.add_argument("--out", default="build/bench", help="output directory (default build/bench)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--readme", nargs="?", const=str(ROOT / "README.md"), default=None,
                    metavar="FILE", help="rewrite the ceiling block of FILE (default README.md)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    from rtl.config import HardwareConfig
    configs = [c for c in args.configs.split(",") if c]
    bad = [c for c in configs if c not in HardwareConfig.PRESETS]
    if bad:
        ap.error(f"--configs: unknown preset {bad[0]!r}; choose from "
                 f"{', '.join(HardwareConfig.PRESETS)}")
    if args.cycles < 1 or args.repeat < 1 or args.rounds < 1:
        ap.error("--cycles, --repeat and --rounds must be at least 1")
    readme = Path(args.readme) if args.readme else None
    if readme is not None:
        from benchmarks.readme_block import BlockError, check_block
        try:
            check_block(readme, "ceiling")
        except BlockError as e:
            ap.error(str(e))
    out = Path(args.out).resolve()
    try:
        res = measure(cycles=args.cycles, repeat=args.repeat, rounds=args.rounds, configs=configs, work=out / "ceiling",
                      progress=not args.no_progress)
    except CeilingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "ceiling.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    if readme is not None:
        from benchmarks.readme_block import update_block
        cmd = "`.venv/bin/python benchmarks/ceiling.py" + (
            f" --cycles {args.cycles}" if args.cycles != 2_000_000 else "") + "`"
        update_block(readme, "ceiling", md + f"\n\nProduced by {cmd}.")
    print(json.dumps(res) if args.json else md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
