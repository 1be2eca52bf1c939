"""Shared helpers for the simulation-layer tests."""

import pytest

from sim.build import simulator_available

COCOTB_SIMULATORS = ("verilator", "icarus")


def needs(simulator: str):
    """Skip (saying why) when ``simulator`` cannot run here; mark HDL-simulator tests ``sim``."""
    if simulator == "amaranth":
        return []
    reason = simulator_available(simulator)
    return [pytest.mark.sim, pytest.mark.skipif(reason is not None, reason=reason or "")]


def backend_params(names=("amaranth",) + COCOTB_SIMULATORS):
    """``pytest.param`` per backend, with the skip/mark of :func:`needs`."""
    return [pytest.param(n, marks=needs(n), id=n) for n in names]


@pytest.fixture
def fresh_build_dir(tmp_path, monkeypatch):
    """An empty build directory for tests that must see a first (uncached) build."""
    d = tmp_path / "build"
    monkeypatch.setenv("ZEROSKIP_BUILD_DIR", str(d))
    return d
