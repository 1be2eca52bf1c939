"""Benchmark: a 1024x1024 layer on the default configuration, and simulator speed.

    .venv/bin/python benchmarks/matvec.py [--quick] [--out build/bench]

Part 1 (Verilator): efficiency, speedup over dense and weight-load bandwidth at sparsity
0, 0.5, 0.8, 0.9, 0.95 with 4- and 8-bit weights. Part 2: simulated cycles per wall second of
each simulator on the same program (a smaller layer for the slow simulators, stated in the
table). Writes ``matvec.json``, ``matvec.md`` (the README's tables) and ``matvec.png``.
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

    speed = []
    if not args.skip_speed:
        for sim, size in tqdm([("verilator", n), ("icarus", 256), ("amaranth", 128)],
                              desc="simulator speed", unit="sim"):
            r = run_matvec(rows=size, cols=size, sparsity=0.8, w_bits=4, cfg=cfg, simulator=sim, seed=1)
            speed.append(r)

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
        v = next(r for r in speed if r["simulator"] == "verilator")["sim_cycles_per_second"]
        lines += ["", "| simulator | layer | bit-exact | simulated cycles | wall s | cycles/s | vs Verilator |",
                  "|---|---|---|---|---|---|---|"]
        for r in speed:
            lines.append(f"| {r['simulator']} | {r['rows']}x{r['cols']} | "
                         f"{'yes' if r['bit_exact'] else 'NO'} | {r['sim_cycles']} | "
                         f"{r['sim_wall_seconds']:.2f} | {r['sim_cycles_per_second']:,.0f} | "
                         f"{r['sim_cycles_per_second'] / v:.4f} |")
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

    bad = [r for r in runs + speed if not r["bit_exact"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
