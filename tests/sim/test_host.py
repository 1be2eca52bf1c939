"""sim/host.py on every backend, on the real accelerator (tiny configuration) with hand-built
images: bit-exact against a naive reference, and identical cycles and counters everywhere."""

import functools

import pytest

from rtl.config import HardwareConfig
from rtl.memfmt import ImageError
from sim import backends, host
from tests.sim import images, routines
from tests.sim.conftest import backend_params

TINY = HardwareConfig.tiny()

CASES = {
    # name: (config, rows, cols, weight density, input zero fraction)
    "tiny-6x20": (TINY, 6, 20, 0.5, 0.3),
    "tiny4-9x16": (TINY.replace(weight_bits=4), 9, 16, 0.3, 0.5),
}

_results: dict = {}


def run_case(backend: str, case: str) -> dict:
    """Run (once per backend and case) the host's matvec; cached for the comparisons."""
    key = (backend, case)
    if key not in _results:
        cfg, rows, cols, density, zeros = CASES[case]
        layer = images.random_layer(cfg, rows, cols, density=density, seed=rows)
        x = images.random_input(cols, zero_fraction=zeros, seed=cols)
        hi = images.build_image(cfg, layer)
        routine = functools.partial(host.run_matvec, cm=hi, x_words=images.pack(cfg, x),
                                    n_out=hi.n_out)
        res = backends.run_host(backend, cfg, routine)
        _results[key] = {"res": res, "want": images.reference(cfg, layer, x), "layer": layer,
                         "x": x, "hi": hi, "cfg": cfg}
    return _results[key]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", backend_params())
def test_matvec_bit_exact(backend, case):
    r = run_case(backend, case)
    cfg, res, layer, x = r["cfg"], r["res"], r["layer"], r["x"]
    assert images.unpack(cfg, res["out_words"], layer.rows) == r["want"]
    assert images.unpack(cfg, res["out_words_dense"], layer.rows) == r["want"]
    progs = res["programs"]
    assert set(progs) == {"load", "matvec", "matvec_dense"}
    for name, p in progs.items():
        assert p["pc"] == r["hi"].image.entry(name)
        assert p["cycles"] > 0
        # counters() before and after run() sample the same cycles run() does
        assert p["counters"]["cycles"] == p["cycles"]
    nonzero = sum(1 for row in layer.weight for w, v in zip(row, x) if w and v)
    assert progs["matvec"]["counters"]["macs"] == nonzero
    assert progs["load"]["counters"]["dram_bytes"] == len(r["hi"].image.dram)
    assert progs["matvec"]["cycles"] < progs["matvec_dense"]["cycles"]
    assert len(progs["matvec"]["counters"]["lane_busy"]) == cfg.lanes


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", backend_params(("verilator", "icarus")))
def test_backends_agree_with_amaranth(backend, case):
    """Outputs, cycles and every counter difference are identical to the Amaranth simulator's
    (so Verilator and Icarus also agree with each other)."""
    assert run_case(backend, case)["res"] == run_case("amaranth", case)["res"]


@pytest.mark.parametrize("backend", backend_params(("verilator", "icarus")))
def test_dram_loads_by_readmemh_like_the_port(backend):
    """The real design's Verilog loads DRAM by $readmemh (rtl.verilog's wrapper): an image
    written in parts, one at a nonzero base, gives the outputs, cycles and counters of the
    same image written word by word through the host_dram port, and of the Amaranth run."""
    r = run_case("amaranth", "tiny-6x20")
    cfg, hi = r["cfg"], r["hi"]
    routine = functools.partial(routines.split_load_matvec, cm=hi,
                                x_words=images.pack(cfg, r["x"]), n_out=hi.n_out)
    fast = backends.get_backend(backend, cfg).run(routine)
    port = backends.get_backend(backend, cfg, dram_backdoor=False).run(routine)
    assert fast.pop("dram_access") == "readmemh" and port.pop("dram_access") == "port"
    assert fast == port == r["res"]


def test_image_for_another_config_is_refused():
    cfg = TINY.replace(weight_bits=4)
    layer = images.random_layer(TINY, 2, 8)
    hi = images.build_image(TINY, layer)
    with pytest.raises(ImageError, match="compiled for hardware config"):
        backends.run_host("amaranth", cfg, functools.partial(host.load_image, image=hi.image))


def test_counter_deltas_wrap():
    from sim.driver import counter_deltas
    before = {"cycles": (1 << 32) - 2, "lane_busy": [5, (1 << 32) - 1]}
    after = {"cycles": 3, "lane_busy": [7, 1]}
    assert counter_deltas(before, after, 32) == {"cycles": 5, "lane_busy": [2, 2]}


@pytest.mark.parametrize("backend", backend_params())
def test_fault_is_an_error(backend):
    from sim.cocotb_backend import SimulationError
    from sim.driver import DriverError
    from tests.sim import routines
    from tests.sim.routines import forget
    with pytest.raises((DriverError, SimulationError), match="fault set") as e:
        backends.run_host(backend, TINY, routines.run_bad_opcode)
    forget(e)
