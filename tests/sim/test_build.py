"""sim/build.py: Verilog generation and simulator builds, cached by content hash."""

import concurrent.futures
import multiprocessing
import os
import time

import pytest

from rtl.config import HardwareConfig
from rtl.top import COUNTERS
from sim import build
from sim.build import BuildError, Design
from tests.sim import standin
from tests.sim.conftest import needs

TINY = HardwareConfig.tiny()


def test_verilog_is_cached(fresh_build_dir):
    d = standin.design()
    first = build.verilog(TINY, d)
    assert not first.cached
    assert first.path.is_file() and first.path.stat().st_size > 0
    assert first.path.parent.parent == fresh_build_dir / "verilog"
    assert first.key.startswith(TINY.digest + "-")
    second = build.verilog(TINY, d)
    assert second.cached and second.path == first.path and second.info == first.info
    info = first.info
    assert info["ports"]["cnt_lane_stall_1"] == {"dir": "out", "width": TINY.counter_bits}
    assert info["ports"]["host_act_wdata"] == {"dir": "in", "width": TINY.aword_bits}
    assert info["dram_memory_module"] == [build.TOPLEVEL, "dram_mem"]


def test_verilog_key_follows_sources_and_config(fresh_build_dir, tmp_path):
    extra = tmp_path / "extra_source.py"
    extra.write_text("A = 1\n")
    d = Design(factory=standin.design().factory, verilog=standin.design().verilog,
               sources=(str(extra),), dram_memory=("dram_mem",))
    a = build.verilog(TINY, d)
    assert build.verilog(TINY, d).cached
    extra.write_text("A = 2\n")
    b = build.verilog(TINY, d)
    assert not b.cached and b.key != a.key
    c = build.verilog(TINY.replace(lanes=3), d)
    assert c.key.split("-")[0] != b.key.split("-")[0]


def test_real_design_verilog_describes_ports_and_dram():
    vb = build.verilog(TINY)
    ports = vb.info["ports"]
    for name in COUNTERS:
        assert ports[f"cnt_{name}"]["width"] == TINY.counter_bits
    for lane in range(TINY.lanes):
        assert f"cnt_lane_busy_{lane}" in ports and f"cnt_lane_stall_{lane}" in ports
    assert ports["host_dram_wdata"]["width"] == TINY.dram_word_bits
    # The DRAM model's array, for backdoor loading, was found where Design says it is.
    assert vb.info["dram_memory"] == list(build.DEFAULT_DESIGN.dram_memory)
    assert vb.info["dram_memory_module"] is not None


def test_verilog_structure_parser():
    text = """module top(a, b);
  input [3:0] a;
  output b;
  reg [7:0] arr [0:15];
  sub #(
    .W(32'd4)
  ) inst1 (
    .x(a)
  );
  \\top.child  child (
    .y(b)
  );
  always @(posedge clk) begin
  end
endmodule
module sub(x);
  reg [3:0] mem [15:0];
endmodule
"""
    mods = build.verilog_structure(text)
    assert mods["top"]["ports"] == {"a": {"dir": "in", "width": 4}, "b": {"dir": "out", "width": 1}}
    assert mods["top"]["instances"] == {"inst1": "sub", "child": "top.child"}
    assert mods["top"]["arrays"] == ["arr"]
    assert mods["sub"]["arrays"] == ["mem"]


def test_bad_design_raises_build_error(fresh_build_dir):
    d = Design(factory="tests.sim.standin:StandIn", verilog="tests.sim.standin:no_such_function",
               sources=("tests/sim/standin.py",))
    with pytest.raises(BuildError, match="Verilog generation .*no_such_function.* failed"):
        build.verilog(TINY, d)


@pytest.mark.parametrize("simulator", [pytest.param(s, marks=needs(s)) for s in
                                       build.SIMULATORS])
def test_sim_build_is_cached(simulator, fresh_build_dir):
    d = standin.design()
    first = build.sim_build(TINY, simulator, design=d)
    assert not first.cached
    assert first.directory.parent == fresh_build_dir / "sim" / simulator
    assert first.directory.name.startswith(TINY.digest + "-")
    t0 = time.monotonic()
    second = build.sim_build(TINY, simulator, design=d)
    assert second.cached and second.directory == first.directory
    assert time.monotonic() - t0 < 2.0
    waves = build.sim_build(TINY, simulator, waves="vcd", design=d)
    assert waves.directory != first.directory and "-waves" in waves.directory.name


@pytest.mark.parametrize("_", [pytest.param(0, marks=needs("verilator"))])
def test_verilator_build_narrows_public_signals(_):
    sb = build.sim_build(TINY, "verilator", design=standin.design())
    vlt = (sb.directory / "public.vlt").read_text()
    assert f'public_flat_rw -module "{build.TOPLEVEL}" -var "cnt_cycles"' in vlt
    assert f'public_flat_rw -module "{build.TOPLEVEL}" -var "dram_mem"' in vlt
    # The Verilated model registers only those with its VPI: no internal signal (the runner's
    # --public-flat-rw would have registered every one, e.g. the decompressor's checksum).
    syms = "".join(p.read_text() for p in sb.directory.glob("Vtop__Syms*.cpp"))
    assert 'varInsert("cnt_cycles"' in syms and 'varInsert("dram_mem"' in syms
    assert 'varInsert("checksum"' not in syms


def _build_icarus_in(build_dir: str) -> tuple[str, bool]:
    os.environ["ZEROSKIP_BUILD_DIR"] = build_dir
    sb = build.sim_build(TINY, "icarus", design=standin.design())
    return str(sb.directory), sb.cached


@pytest.mark.parametrize("_", [pytest.param(0, marks=needs("icarus"))])
def test_concurrent_builds_share_one_result(_, fresh_build_dir):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = list(pool.map(_build_icarus_in, [str(fresh_build_dir)] * 2))
    assert results[0][0] == results[1][0]
    assert sorted(cached for _, cached in results) == [False, True]


def test_missing_iverilog_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    reason = build.simulator_available("icarus")
    assert reason and "iverilog" in reason
    with pytest.raises(BuildError, match="Icarus Verilog not found"):
        build.sim_build(TINY, "icarus", design=standin.design())
    from sim.cocotb_backend import CocotbBackend
    from tests.sim import routines
    with pytest.raises(BuildError, match="iverilog"):
        CocotbBackend(TINY, "icarus", design=standin.design()).run(routines.fail_with_value_error)


@pytest.mark.parametrize("_", [pytest.param(0, marks=needs("icarus"))])
def test_compile_error_reports_log(_, fresh_build_dir):
    d = Design(factory="tests.sim.standin:StandIn", verilog="tests.sim.standin:broken_verilog",
               sources=("tests/sim/standin.py",), dram_memory=None)
    with pytest.raises(BuildError, match=r"(?s)icarus build .* failed.*syntax error"):
        build.sim_build(TINY, "icarus", design=d)
    # A failed build leaves no stamp: the next attempt builds again (and fails again).
    with pytest.raises(BuildError):
        build.sim_build(TINY, "icarus", design=d)


def test_unknown_simulator():
    with pytest.raises(ValueError, match="unknown simulator 'modelsim'"):
        build.sim_build(TINY, "modelsim")


def test_icarus_time_zero_fix():
    text = ("module m(a);\n"
            "  reg \\$auto$verilog_backend.cc:2355:dump_module$3  = 0;\n"
            "  always @* begin\n"
            "    if (\\$auto$verilog_backend.cc:2355:dump_module$3 ) begin end\n"
            "  end\nendmodule\n")
    fixed = build._icarus_time_zero_fix(text).splitlines()
    assert fixed[2] == "  initial \\$auto$verilog_backend.cc:2355:dump_module$3 = 1'h1;"
    assert len(fixed) == len(text.splitlines()) + 1


def test_a_loaded_module_changed_on_disk_is_refused(tmp_path, monkeypatch):
    """Editing a design source after the process imported it would build the old module's
    Verilog under the new file's key: source_hash refuses, naming the module; a change to a
    source no loaded module came from only changes the key."""
    import importlib
    import sys
    mod = tmp_path / "zs_stale_design.py"
    mod.write_text("A = 1\n")
    other = tmp_path / "notes.txt"
    other.write_text("x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    d = Design(factory="zs_stale_design:A", verilog="zs_stale_design:A",
               sources=(str(mod), str(other)), dram_memory=None)
    first = d.source_hash()
    importlib.import_module("zs_stale_design")
    try:
        other.write_text("y\n")
        second = d.source_hash()
        assert second != first
        mod.write_text("A = 2\n")
        with pytest.raises(BuildError, match=r"zs_stale_design changed on disk after this "
                                             r"process loaded it.*restart the process"):
            d.source_hash()
    finally:
        sys.modules.pop("zs_stale_design", None)
