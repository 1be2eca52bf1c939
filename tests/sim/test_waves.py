"""sim/waves.py and waveform capture on every backend (real accelerator, tiny configuration)."""

import functools
import shutil

import pytest

from rtl.config import HardwareConfig
from sim import backends, host, waves
from tests.sim import images
from tests.sim.conftest import needs

TINY = HardwareConfig.tiny()

VCD = """$timescale 1ps $end
$scope module TOP $end
$var wire 1 ! clk $end
$scope module zeroskip_top $end
$var wire 1 ! clk $end
$var wire 32 " cnt_cycles [31:0] $end
$var wire 1 # done $end
$var wire 8 $ $17 [7:0] $end
$scope module ctrl $end
$var wire 2 % state [1:0] $end
$upscope $end
$scope module lane1 $end
$var wire 1 & busy $end
$upscope $end
$scope module lane0 $end
$var wire 1 ' busy $end
$var wire 8 ( mem[3] [7:0] $end
$upscope $end
$scope module decomp $end
$var wire 16 ) count $end
$upscope $end
$scope module vector $end
$var wire 1 * busy $end
$upscope $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
"""


def test_header_and_groups(tmp_path):
    path = tmp_path / "x.vcd"
    path.write_text(VCD)
    vars_ = waves.read_header(path)
    assert waves.Var(("TOP", "zeroskip_top", "ctrl"), "state[1:0]", 2, "state") in vars_
    names = {(label, tuple(v.full_name for v in members), closed)
             for label, members, closed in waves.groups(vars_)}
    assert names == {
        ("ports", ("TOP.zeroskip_top.clk", "TOP.zeroskip_top.done"), False),
        ("counters", ("TOP.zeroskip_top.cnt_cycles[31:0]",), False),
        ("controller (ctrl)", ("TOP.zeroskip_top.ctrl.state[1:0]",), False),
        ("decompressor (decomp)", ("TOP.zeroskip_top.decomp.count[15:0]",), False),
        ("vector unit (vector)", ("TOP.zeroskip_top.vector.busy",), False),
        ("lane 0", ("TOP.zeroskip_top.lane0.busy",), False),
        ("lane 1", ("TOP.zeroskip_top.lane1.busy",), True),
    }
    # With the port list, other top-scope signals go to a closed group of their own.
    with_ports = {label: [v.name for v in members]
                  for label, members, _ in waves.groups(vars_, ports={"clk", "cnt_cycles"})}
    assert with_ports["ports"] == ["clk"] and with_ports["top internals"] == ["done"]
    gtkw = waves.write_gtkw(path)
    text = gtkw.read_text()
    assert f'[dumpfile] "{path.resolve()}"' in text
    order = [line for line in text.splitlines() if line.startswith("-")]
    assert order == ["-ports", "-ports", "-counters", "-counters", "-controller (ctrl)",
                     "-controller (ctrl)", "-decompressor (decomp)", "-decompressor (decomp)",
                     "-vector unit (vector)", "-vector unit (vector)", "-lane 0", "-lane 0", "-lane 1", "-lane 1"]
    assert "@800200" in text and "@1000200" in text and "@c00200" in text


def test_wave_format():
    assert waves.wave_format("a/b.FST") == "fst"
    with pytest.raises(ValueError, match="must end in .vcd or .fst"):
        waves.wave_format("x.ghw")


def _matvec_routine(cfg):
    layer = images.random_layer(cfg, 4, 12, seed=5)
    hi = images.build_image(cfg, layer)
    x = images.random_input(12)
    return functools.partial(host.run_matvec, cm=hi, x_words=images.pack(cfg, x),
                             n_out=hi.n_out), images.reference(cfg, layer, x)


CASES = [pytest.param("amaranth", "vcd", id="amaranth-vcd"),
         pytest.param("amaranth", "fst", id="amaranth-fst", marks=pytest.mark.skipif(
             shutil.which("vcd2fst") is None, reason="GTKWave's vcd2fst is not on PATH"))]
CASES += [pytest.param(s, f, id=f"{s}-{f}", marks=needs(s))
          for s in ("verilator", "icarus") for f in ("vcd", "fst")]


@pytest.mark.parametrize("backend,fmt", CASES)
def test_waves_written_with_gtkw(backend, fmt, tmp_path):
    routine, want = _matvec_routine(TINY)
    path = tmp_path / "sub" / f"run.{fmt}"
    res = backends.run_host(backend, TINY, routine, waves=path)
    assert images.unpack(TINY, res["out_words"], 4) == want  # waves change nothing
    assert path.is_file() and path.stat().st_size > 1000
    gtkw = path.with_suffix(".gtkw")
    text = gtkw.read_text()
    assert f'[dumpfile] "{path.resolve()}"' in text
    if fmt == "fst" and shutil.which("fst2vcd") is None:
        pytest.skip("fst2vcd not on PATH: the save file names the dump only")
    for group in ("-ports", "-counters", "-controller (ctrl)", "-decompressor (decomp)",
                  "-vector unit (vector)", "-lane 0", "-lane 1"):
        assert group in text, group
    traces = [line for line in text.splitlines() if line and line[0] not in "[@-"]
    assert any(t.endswith(".done") for t in traces)
    assert any(".ctrl." in t for t in traces)
    assert any("cnt_cycles" in t for t in traces)
