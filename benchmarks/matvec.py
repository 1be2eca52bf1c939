"""Benchmark: a 1024x1024 layer on the default configuration, and simulator speed.

    .venv/bin/python benchmarks/matvec.py [--quick] [--out build/bench]

Part 1 (Verilator): efficiency, speedup over dense and weight-load bandwidth at sparsity
0, 0.5, 0.8, 0.9, 0.95 with 4- and 8-bit weights. Part 2: simulated cycles per wall second of
each simulator on the same design and program (:mod:`sim.speed`; fewer repeats of the program's
MATVEC on the slow simulators, stated in the table). Writes ``matvec.json``, ``matvec.md`` (the README's tables) and ``matvec.png``.
Every run is checked bit for bit; the script exits 1 if any is not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from rtl.config import HardwareConfig  # noqa: E402
from sim.matvec import run_matvec  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256x256 instead of 1024x1024")
    ap.add_argument("--out", default="build/bench", help="output directory (default build/bench)")
    ap.add_argument("--skip-speed", action="store_true", help="only part 1")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 256 if args.quick else 1024
    cfg = HardwareConfig.default()

    runs = []
    jobs = [(wb, s) for wb in (4, 8) for s in SPARSITIES]
    for wb, s in tqdm(jobs, desc=f"{n}x{n} on verilator", unit="run"):
        r = run_matvec(rows=n, cols=n, sparsity=s, w_bits=wb, cfg=cfg, simulator="verilator", seed=1)
        runs.append(r)

    # Part 2: simulator speed on the same design (default config), one long program per
    # simulator (sim.speed: back-to-back dense MATVECs in a single Driver.run, so Python wakes a
    # handful of times); fewer repeats on the slow simulators, same cycles per MATVEC.
    speed = []
    if not args.skip_speed:
        from sim.speed import measure
        for sim, repeat in tqdm([("verilator", 100), ("icarus", 2), ("amaranth", 1)],
                                desc="simulator speed", unit="sim"):
            r = measure(cfg, sim, repeat=repeat)
            speed.append({"simulator": sim, "repeat": r["repeat"], "cycles": r["bench"]["cycles"],
                          "seconds": r["bench"]["seconds"],
                          "cycles_per_second": r["bench"]["cycles_per_second"],
                          "build_seconds": r["stats"].get("build_seconds")})

    (out / "matvec.json").write_text(json.dumps({"runs": runs, "speed": speed}, indent=1))

    lines = [f"Default config ({cfg.lanes} lanes x {cfg.m} multipliers, K={cfg.k}, "
             f"{cfg.dram_bytes_per_cycle} B/cycle DRAM), {n}x{n} layer, Verilator, seed 1:", "",
             "| w bits | sparsity | bit-exact | cycles | ideal | efficiency | dense cycles | "
             "speedup vs dense | weight load cycles | ideal load | load / DRAM bw |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['w_bits']} | {r['sparsity']:.2f} | {'yes' if r['bit_exact'] else 'NO'} | "
            f"{r['cycles']} | {r['ideal_cycles']:.0f} | {r['efficiency']:.3f} | {r['dense_cycles']} | "
            f"{r['speedup_vs_dense']:.2f}x | {r['weight_load_cycles']} | {r['ideal_load_cycles']:.0f} | "
            f"{r['load_efficiency']:.3f} |")
    if speed:
        v = next(r for r in speed if r["simulator"] == "verilator")["cycles_per_second"]
        lines += ["", "Simulator speed, default config, dense 1024x1024 MATVECs back to back in one "
                  "program (`python -m sim.speed`):", "",
                  "| simulator | MATVECs | simulated cycles | wall s | cycles/s | vs Verilator |",
                  "|---|---|---|---|---|---|"]
        for r in speed:
            lines.append(f"| {r['simulator']} | {r['repeat']} | {r['cycles']} | {r['seconds']:.2f} | "
                         f"{r['cycles_per_second']:,.0f} | {r['cycles_per_second'] / v:.4f} |")
    table = "\n".join(lines)
    (out / "matvec.md").write_text(table + "\n")
    print(table)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for wb in (4, 8):
            rs = [r for r in runs if r["w_bits"] == wb]
            a1.plot([r["sparsity"] for r in rs], [r["efficiency"] for r in rs], "o-", label=f"{wb}-bit")
            a2.plot([r["sparsity"] for r in rs], [r["speedup_vs_dense"] for r in rs], "o-", label=f"{wb}-bit")
        a1.set(xlabel="weight sparsity", ylabel="efficiency (ideal / measured cycles)", ylim=(0, 1.05))
        a2.set(xlabel="weight sparsity", ylabel="speedup over dense (same hardware)")
        for a in (a1, a2):
            a.grid(alpha=0.3)
            a.legend()
        fig.suptitle(f"{n}x{n} layer on the default configuration")
        fig.tight_layout()
        fig.savefig(out / "matvec.png", dpi=100)
    except Exception as e:  # noqa: BLE001 - the plot is a convenience
        print(f"(no plot: {e})", file=sys.stderr)

    bad = [r for r in runs if not r["bit_exact"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
