"""Simulation speed: simulated cycles per wall-clock second of each backend.

``python -m sim.speed --hw default --simulator verilator [--repeat 200]`` compiles a random
sparse layer that fills the configuration, loads it, then times one long program: ``repeat``
back-to-back ``MATVEC`` instructions (dense, so every lane is busy every cycle) followed by
``END``, executed in a single :meth:`~sim.driver.Driver.run`. Python wakes up a handful of times
for the whole program, so the figure is the simulator's own speed on the design.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import MemoryImage

from .host import load_image, run_program

__all__ = ["bench_image", "timed_programs", "measure"]


def bench_image(cfg: HardwareConfig, *, rows: int | None = None, cols: int | None = None,
                sparsity: float = 0.8, repeat: int = 100, seed: int = 0):
    """A compiled layer's image plus a program ``"bench"``: ``repeat`` dense MATVECs, END."""
    from compiler.matvec import compile_matvec
    from model.quant import random_input, random_layer

    cols = cols or min(1024, (cfg.act_depth // 4) * cfg.k)
    rows = rows or min(1024, cfg.lanes * max(1, cfg.wsram_depth // (-(-cols // cfg.k))) // 2)
    layer = random_layer(rows, cols, sparsity=sparsity, w_bits=cfg.weight_bits, seed=seed)
    cm = compile_matvec(cfg, layer)
    img = cm.image
    words = img.program_words
    mv = next(isa.decode(cfg, w) for w in words[img.entry("matvec"):]
              if isa.decode(cfg, w)["op"] == isa.Op.MATVEC)
    fields = {k: mv[k] for k in ("w_base", "p_base", "n_rows", "n_words", "in_base", "out_base")}
    room = cfg.imem_depth - len(words) - 1
    if room < 1:
        raise ValueError("no instruction memory left for the bench program")
    repeat = min(repeat, room)
    bench = [isa.matvec(cfg, dense=True, **fields)] * repeat + [isa.end(cfg)]
    manifest = json.loads(json.dumps(img.manifest))
    manifest["programs"]["bench"] = {"pc": len(words), "length": len(bench)}
    image = MemoryImage(cfg, img.dram, isa.program_bytes(cfg, words + bench), manifest)
    x_words = cm.pack_input(random_input(cols, seed=seed + 1))
    return image, cm.in_base, x_words, repeat


async def timed_programs(driver, image, in_base, x_words, names=("load", "bench"),
                         loops: int = 1) -> dict:
    """Load ``image``, write the input, then run each of ``names`` ``loops`` times, timing the
    runs in wall time and in CPU time of the process running the routine (for the HDL
    backends, the simulator process; ``cycles_per_cpu_second`` is less sensitive to other
    jobs on the machine than ``cycles_per_second``). For configurations whose instruction
    memory only fits short programs, ``loops`` amortises the per-run cost."""
    t0 = time.perf_counter()
    await load_image(driver, image)
    load_s = time.perf_counter() - t0
    await driver.write_act(in_base, x_words)
    out = {"image_load_seconds": load_s, "dram_words": len(image.dram_words)}
    for name in names:
        cycles = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(loops):
            cycles += (await run_program(driver, image, name))["cycles"]
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[name] = {"cycles": cycles, "runs": loops, "seconds": dt,
                     "cycles_per_second": cycles / dt if dt else 0.0,
                     "cpu_seconds": cpu,
                     "cycles_per_cpu_second": cycles / cpu if cpu else 0.0}
    return out


def measure(cfg: HardwareConfig, simulator: str, *, repeat: int = 100, loops: int = 1,
            **options) -> dict:
    """Build, run :func:`timed_programs` on ``simulator``; returns timings and build stats."""
    from . import backends
    image, in_base, x_words, repeat = bench_image(cfg, repeat=repeat)
    backend = backends.get_backend(simulator, cfg, **options)
    t0 = time.perf_counter()
    res = backend.run(functools.partial(timed_programs, image=image, in_base=in_base,
                                        x_words=x_words, loops=loops))
    res["wall_seconds"] = time.perf_counter() - t0
    res["repeat"] = repeat
    res["stats"] = backend.stats
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hw", default="default")
    p.add_argument("--simulator", default="verilator", choices=("amaranth", "verilator", "icarus"))
    p.add_argument("--repeat", type=int, default=100,
                   help="MATVECs in the bench program (capped by the instruction memory)")
    p.add_argument("--loops", type=int, default=1, help="runs of each program")
    a = p.parse_args(argv)
    from sim import speed  # routines must come from an importable module, not __main__
    res = speed.measure(HardwareConfig.resolve(a.hw), a.simulator, repeat=a.repeat,
                        loops=a.loops)
    print(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
