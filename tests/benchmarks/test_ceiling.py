"""benchmarks/ceiling.py: the harness's own speed on Verilator (a counter with both clocks, the
tiny accelerator idle), every wait checked against the design's count of cycles; the table, the
README block and the argument errors."""

from __future__ import annotations

import json

import pytest

import benchmarks.ceiling as ceiling
from tests.sim.conftest import needs

CYCLES = 20_000


@pytest.mark.parametrize("sim", ["verilator"])
def test_measure_on_verilator(sim, tmp_path, capsys, request):
    for mark in needs(sim):
        request.applymarker(mark)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- ceiling:begin -->\nold\n<!-- ceiling:end -->\ntail\n")
    rc = ceiling.main(["--cycles", str(CYCLES), "--repeat", "2", "--rounds", "2", "--configs", "tiny",
                       "--out", str(tmp_path / "out"), "--no-progress", "--json",
                       "--readme", str(readme)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["design"] for r in res["rows"]] == ["32-bit counter", "32-bit counter",
                                                  "accelerator (`tiny` config), idle"]
    for r in res["rows"]:
        # every wait ran exactly CYCLES cycles by the design's own count (checked in the
        # simulator), and the row is the fastest of them
        assert [w["cycles"] for w in r["waits"]] == [CYCLES] * 4      # 2 rounds x 2 waits
        assert r["seconds"] == min(w["seconds"] for w in r["waits"]) > 0
        assert r["cycles_per_second"] == pytest.approx(CYCLES / r["seconds"])
    assert json.loads((tmp_path / "out" / "ceiling.json").read_text())["rows"] == res["rows"]
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- ceiling:end -->\ntail\n")
    assert "| 32-bit counter | Verilog clock (`--timing`) | 20,000 |" in text
    assert "benchmarks/ceiling.py --cycles 20000`" in text


def test_markdown():
    w = {"cycles": 1000, "seconds": 0.002, "cpu_seconds": 0.002}
    rows = [ceiling._row("32-bit counter", "gpi", [w, dict(w, seconds=0.001)]),
            ceiling._row("32-bit counter", "hdl", [dict(w, seconds=0.0005)]),
            ceiling._row("accelerator (`default` config), idle", "gpi", [dict(w, seconds=0.005)])]
    res = {"cycles": 1000, "repeat": 2, "rounds": 1, "target": 1_000_000, "rows": rows,
           "machine": {"cpus": 2, "load_average": (1.0, 1.0, 1.0)}}
    md = ceiling.markdown(res)
    assert rows[0]["cycles_per_second"] == 1_000_000            # the faster of the two waits
    assert "| 32-bit counter | gpi | 1,000 | 0.00 | 1,000,000 | 500,000 |" in md
    assert "takes 1.00 µs per cycle (0.00 µs left" in md
    assert "0.50 µs (0.50 µs left)" in md
    assert "Accelerator (`default` config), idle: 5.00 µs per cycle (0.20x the target)." in md


@pytest.mark.parametrize("argv, message", [
    (["--configs", "huge"], "unknown preset 'huge'"),
    (["--cycles", "0"], "must be at least 1"),
    (["--repeat", "0"], "must be at least 1"),
    (["--rounds", "0"], "must be at least 1"),
])
def test_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        ceiling.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_readme_without_markers(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    with pytest.raises(SystemExit):
        ceiling.main(["--readme", str(readme)])
    err = capsys.readouterr().err
    assert "no block between <!-- ceiling:begin -->" in err
    assert readme.read_text() == "# no block\n"


@pytest.mark.parametrize("sim", ["verilator"])
def test_failed_run_is_one_line_error(sim, tmp_path, capsys, monkeypatch, request):
    for mark in needs(sim):
        request.applymarker(mark)
    monkeypatch.setattr(ceiling, "COUNTER_VERILOG", "module ceiling_counter(; endmodule\n")
    rc = ceiling.main(["--cycles", "10", "--repeat", "1", "--rounds", "1", "--configs", "", "--out",
                       str(tmp_path / "out"), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the ceiling_counter run failed") and "see " in err
    assert "\n" not in err
    assert not (tmp_path / "out" / "ceiling.json").exists()
