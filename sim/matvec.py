"""One sparse quantized layer, end to end: build it, compile it, simulate it, compare, report.

This is what ``zeroskip matvec`` and ``benchmarks/matvec.py`` run. Figures (all cycles are
accelerator clock cycles):

``cycles``            the ``matvec`` program, weights already resident (fetch/END overhead included)
``ideal_cycles``      nonzero products / (L*M): the configuration's physical limit
``efficiency``        ideal_cycles / cycles
``dense_cycles``      the same hardware and layer with zero skipping disabled (``matvec_dense``)
``load_cycles``       the ``load`` program: weights and row parameters through the decompressor
``ideal_load_cycles`` compressed weight bytes / DRAM bytes per cycle
``weight_load_cycles`` the weight LOAD alone (from the decompressor's busy time)
"""

from __future__ import annotations

import time

import numpy as np

from compiler.matvec import compile_matvec, expected_counts
from model.quant import int_matvec, random_input, random_layer
from rtl.config import HardwareConfig

__all__ = ["SIMULATORS", "run_matvec", "MatvecError"]

SIMULATORS = ("amaranth", "verilator", "icarus", "functional")


class MatvecError(RuntimeError):
    pass


def _backend_run(simulator: str, cfg: HardwareConfig, cm, x_words, *, waves=None):
    """Run the host program's matvec routine on a backend; returns its raw result dict."""
    from . import backends
    return backends.run_matvec(simulator, cfg, cm, x_words, waves=waves)


def run_matvec(*, rows: int, cols: int, sparsity: float, w_bits: int,
               cfg: HardwareConfig, simulator: str = "verilator", seed: int = 0,
               act_zero_fraction: float = 0.0, waves: str | None = None) -> dict:
    """Build a seeded random layer, compile it for ``cfg``, simulate, compare with the integer
    reference; returns the report dictionary (see the module docstring)."""
    if simulator not in SIMULATORS:
        raise MatvecError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if w_bits != cfg.weight_bits:
        cfg = cfg.replace(weight_bits=w_bits)
    layer = random_layer(rows, cols, sparsity=sparsity, w_bits=w_bits, seed=seed)
    x = random_input(cols, seed=seed + 1, zero_fraction=act_zero_fraction)
    cm = compile_matvec(cfg, layer)
    want = int_matvec(layer, x, acc_bits=cfg.acc_bits).numpy()

    t0 = time.perf_counter()
    raw = _backend_run(simulator, cfg, cm, cm.pack_input(x), waves=waves)
    wall = time.perf_counter() - t0

    got = cm.unpack_output(raw["out_words"])
    mismatches = np.flatnonzero(got != want)
    exp = expected_counts(cfg, layer, x)
    cyc = raw["cycles"]
    counters = raw["counters"]
    ideal = exp["nonzero_products"] / cfg.macs_per_cycle
    ideal_load = cm.stats["weight_stream_bytes"] / cfg.dram_bytes_per_cycle
    total_sim_cycles = sum(cyc.values())
    report = {
        "bit_exact": bool(len(mismatches) == 0),
        "mismatches": [{"row": int(r), "expected": int(want[r]), "got": int(got[r])}
                       for r in mismatches[:10]],
        "rows": rows, "cols": cols, "sparsity": sparsity, "w_bits": w_bits, "seed": seed,
        "nnz": int(layer.nnz),
        "nonzero_products": int(exp["nonzero_products"]),
        "cycles": cyc["matvec"],
        "ideal_cycles": ideal,
        "efficiency": ideal / cyc["matvec"] if cyc["matvec"] else 0.0,
        "dense_cycles": cyc["matvec_dense"],
        "speedup_vs_dense": cyc["matvec_dense"] / cyc["matvec"] if cyc["matvec"] else 0.0,
        "load_cycles": cyc["load"],
        "weight_load_cycles": raw.get("weight_load_cycles"),
        "ideal_load_cycles": ideal_load,
        "load_efficiency": (ideal_load / raw["weight_load_cycles"]
                            if raw.get("weight_load_cycles") else None),
        "compressed_bytes": cm.stats["weight_stream_bytes"],
        "dense_bytes": cm.stats["dense_bytes"],
        "weights_resident": True,
        "wsram_words_used_per_lane": cm.n_slots * cm.n_words,
        "wsram_depth": cfg.wsram_depth,
        "simulator": simulator,
        "sim_wall_seconds": wall,
        "sim_cycles": total_sim_cycles,
        "sim_cycles_per_second": total_sim_cycles / wall if wall else 0.0,
        "build_seconds": raw.get("build_seconds"),
        "config": cfg.to_dict(),
        "config_digest": cfg.digest,
        "counters": counters,
    }
    if waves:
        report["waves"] = waves
        report["gtkw"] = raw.get("gtkw")
    return report
