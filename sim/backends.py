"""One entry point for every simulation backend.

========== =============================================== ==================================
name       what runs                                       module
========== =============================================== ==================================
amaranth   Amaranth's Python simulator, in this process    :mod:`sim.amaranth_backend`
verilator  cocotb + Verilator on the generated Verilog     :mod:`sim.cocotb_backend`
icarus     cocotb + Icarus Verilog on the generated Verilog :mod:`sim.cocotb_backend`
functional numpy model of the ISA, in this process; exact      :mod:`sim.functional`
           values and counts, estimated cycles
========== =============================================== ==================================

Every backend runs a host *routine*: a callable taking a :class:`~sim.driver.Driver` and
returning an awaitable (an ``async def`` of :mod:`sim.host`, or a ``functools.partial`` of one).
For the cocotb backends the routine is pickled into another process, so it must be importable
by reference (module-level function or ``functools.partial`` of one, picklable arguments).

Example::

    from functools import partial
    from sim import backends, host
    result = backends.run_host("verilator", cfg,
                               partial(host.run_matvec, cm=cm, x_words=x, n_out=cm.out_words),
                               waves="build/mv.fst")
"""

from __future__ import annotations

import functools
import types
from pathlib import Path

from rtl.config import HardwareConfig

from . import host

__all__ = ["BACKENDS", "get_backend", "run_host", "run_matvec"]

BACKENDS = ("amaranth", "verilator", "icarus", "functional")


def get_backend(name: str, cfg: HardwareConfig, **options):
    """A backend object with ``run(routine, *, waves=None, gtkw=None)`` and ``stats``.

    ``options`` go to the backend's constructor (``design``, ``run_timeout_cycles``; for the
    cocotb backends also ``dram_backdoor``, ``keep_runs``; for ``functional`` ``strict``,
    ``run_timeout_cycles``).
    """
    if name == "functional":
        from .functional import FunctionalBackend
        return FunctionalBackend(cfg, **options)
    if name == "amaranth":
        from .amaranth_backend import AmaranthBackend
        return AmaranthBackend(cfg, **options)
    if name in ("verilator", "icarus"):
        from .cocotb_backend import CocotbBackend
        return CocotbBackend(cfg, name, **options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def run_host(name: str, cfg: HardwareConfig, routine, *, waves=None, gtkw=None, **options):
    """Run ``routine(driver)`` on backend ``name``; returns the routine's result."""
    return get_backend(name, cfg, **options).run(routine, waves=waves, gtkw=gtkw)


def run_matvec(simulator: str, cfg: HardwareConfig, cm, x_words, *, waves=None,
               **options) -> dict:
    """:func:`sim.host.run_matvec` on a backend, flattened for reports.

    Returns ``out_words``, ``out_words_dense``, ``cycles`` and ``counters`` (dicts keyed by
    program name), ``weight_load_cycles`` (the weight LOAD alone: the ``load_cycles`` counter
    over the ``load_weights`` program, or ``None``), ``build_seconds``, ``gtkw`` (path or
    ``None``) and ``stats`` (the backend's).
    """
    backend = get_backend(simulator, cfg, **options)
    # Hand the routine only what it uses: unpickling a CompiledMatvec in the simulator process
    # would import the compiler and the model (and torch: seconds of start-up).
    light = types.SimpleNamespace(image=cm.image, in_base=cm.in_base, out_base=cm.out_base)
    routine = functools.partial(host.run_matvec, cm=light, x_words=[int(w) for w in x_words],
                                n_out=cm.out_words)
    raw = backend.run(routine, waves=waves)
    progs = raw["programs"]
    lw = progs.get("load_weights")
    return {
        "out_words": raw["out_words"],
        "out_words_dense": raw["out_words_dense"],
        "cycles": {name: p["cycles"] for name, p in progs.items()},
        "counters": {name: p["counters"] for name, p in progs.items()},
        "weight_load_cycles": lw["counters"]["load_cycles"] if lw else None,
        "build_seconds": backend.stats.get("build_seconds"),
        "gtkw": str(Path(waves).with_suffix(".gtkw")) if waves else None,
        "stats": backend.stats,
    }
