"""sim/cocotb_backend.py, sim/cocotb_tb.py and sim/amaranth_backend.py on the stand-in design:
driver semantics against its golden model, and every failure mode reported clearly."""

import functools

import pytest

from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import MemoryImage
from sim import backends, host
from sim.cocotb_backend import SimulationError
from sim.driver import DriverError
from tests.sim import routines, standin
from tests.sim.routines import forget
from tests.sim.conftest import backend_params, needs

TINY = HardwareConfig.tiny()
COCOTB = backend_params(("verilator", "icarus"))


def standin_image(cfg=TINY):
    prog = [isa.load(cfg, dram_addr=2, dram_len=5, count=1, dest=0), isa.end(cfg),
            isa.matvec(cfg, w_base=0, p_base=0, n_rows=1, n_words=3, in_base=0, out_base=4),
            isa.end(cfg),
            isa.matvec(cfg, w_base=0, p_base=0, n_rows=3, n_words=3, in_base=0, out_base=8,
                       dense=True),
            isa.end(cfg)]
    dram = bytes(range(1, 17))
    manifest = {"programs": {"load": {"pc": 0, "length": 2}, "matvec": {"pc": 2, "length": 2},
                             "matvec_dense": {"pc": 4, "length": 2}}}
    return MemoryImage(cfg, dram, isa.program_bytes(cfg, prog), manifest)


class _CM:
    def __init__(self, image, in_base, out_base):
        self.image, self.in_base, self.out_base = image, in_base, out_base


@pytest.mark.parametrize("backend", backend_params())
def test_standin_matvec_matches_golden(backend):
    image = standin_image()
    cm = _CM(image, 0, 4)
    x = [0x0102030405060708, 7, (1 << 64) - 1]
    routine = functools.partial(host.run_matvec, cm=cm, x_words=x, n_out=3)
    res = backends.run_host(backend, TINY, routine, design=standin.design())
    checksum = sum(range(3, 8))  # DRAM bytes 2..6 hold 3..7
    assert res["out_words"] == [(w + checksum) % (1 << 64) for w in x]
    assert res["out_words_dense"] == res["out_words"]
    p = res["programs"]
    # The stand-in's timing: FETCH+DECODE per instruction, LOAD = len+2, MATVEC = 2/word+1.
    assert p["load"]["cycles"] == 1 + 2 + (5 + 2) + 2
    assert p["matvec"]["cycles"] == 1 + 2 + (2 * 3 + 1) + 2
    assert p["matvec_dense"]["cycles"] == p["matvec"]["cycles"] + 3
    assert p["load"]["counters"]["dram_bytes"] == 5
    assert p["matvec"]["counters"]["lane_busy"] == [7, 7]


@pytest.mark.parametrize("backend", COCOTB)
@pytest.mark.parametrize("backdoor", [True, False], ids=["backdoor", "port"])
def test_dram_backdoor_and_port_agree(backend, backdoor):
    b = backends.get_backend(backend, TINY, design=standin.design(), dram_backdoor=backdoor)
    dram = [(i * 37) & 0xFF for i in range(40)]
    res = b.run(functools.partial(routines.roundtrip, dram_words=dram, act_words=[5, 6, 7]))
    assert res["act"] == [5, 6, 7]
    assert b.stats["dram_access"] == ("backdoor" if backdoor else "port")
    # Read the DRAM back through the design: LOAD of 40 words sums them.
    image = MemoryImage(TINY, bytes(dram), isa.program_bytes(TINY, [
        isa.load(TINY, dram_addr=0, dram_len=40, count=1, dest=0), isa.end(TINY),
        isa.matvec(TINY, w_base=0, p_base=0, n_rows=1, n_words=1, in_base=0, out_base=1),
        isa.end(TINY)]), {"programs": {"load": {"pc": 0}, "matvec": {"pc": 2}}})
    res = b.run(functools.partial(host.run_matvec, cm=_CM(image, 0, 1), x_words=[0], n_out=1))
    assert res["out_words"] == [sum(dram)]


@pytest.mark.parametrize("backend", COCOTB)
def test_routine_exception_is_reported(backend):
    with pytest.raises(SimulationError, match="deliberate failure") as e:
        backends.run_host(backend, TINY, routines.fail_with_value_error, design=standin.design())
    assert e.value.error_type == "ValueError"
    assert "fail_with_value_error" in e.value.traceback
    forget(e)


@pytest.mark.parametrize("backend", COCOTB)
def test_driver_error_crosses_the_process_boundary(backend):
    with pytest.raises(SimulationError, match="outside the memory") as e:
        backends.run_host(backend, TINY, routines.write_act_out_of_range,
                          design=standin.design())
    assert e.value.error_type == "DriverError"
    forget(e)


def test_driver_error_in_amaranth():
    with pytest.raises(DriverError, match="write_act: words \\[15, 17\\) outside"):
        backends.run_host("amaranth", TINY, routines.write_act_out_of_range,
                          design=standin.design())


@pytest.mark.parametrize("backend", COCOTB)
def test_simulator_death_is_reported_with_log(backend):
    with pytest.raises(SimulationError, match="produced no result") as e:
        backends.run_host(backend, TINY, routines.exit_simulator, design=standin.design())
    assert e.value.log is not None and e.value.log.exists()
    forget(e)


@pytest.mark.parametrize("backend", backend_params())
def test_run_timeout(backend):
    exc = DriverError if backend == "amaranth" else SimulationError
    with pytest.raises(exc, match="done did not rise within 100 cycles") as e:
        backends.run_host(backend, TINY, routines.never_done, design=standin.design(),
                          run_timeout_cycles=100)
    forget(e)


@pytest.mark.parametrize("backend", COCOTB)
def test_routine_must_be_importable(backend):
    with pytest.raises(TypeError, match="picklable"):
        backends.run_host(backend, TINY, lambda d: None, design=standin.design())

    async def local(driver):
        return None
    local.__module__ = "__main__"
    with pytest.raises(TypeError, match="__main__"):
        backends.run_host(backend, TINY, local, design=standin.design())


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'ghdl'"):
        backends.get_backend("ghdl", TINY)


@pytest.mark.parametrize("_", [pytest.param(0, marks=needs("verilator"))])
def test_python_wakes_per_program_not_per_cycle(_):
    """A long program costs the same Python work as a short one: the stand-in LOAD of N words
    takes N+… cycles; Verilator's wall time for 1000 words is far below a per-cycle await."""
    b = backends.get_backend("verilator", TINY, design=standin.design())
    res = b.run(functools.partial(routines.timed_load, n=1000))
    assert res["cycles"] >= 1000
    # one await per cycle costs tens of microseconds; the whole run must be far cheaper
    assert res["seconds"] < 1000 * 20e-6
