"""benchmarks/utterance.py on a tiny model and configuration (functional backend, and the
Amaranth simulator for part 2 where asked): the table, the targets, the cache, the README block
and the error paths."""

from __future__ import annotations

import json
import shutil

import pytest

import benchmarks.utterance as utterance
from compiler.rnnt import fit_config
from model.checkpoint import save
from model.intref import IntRNNT
from rtl.config import HardwareConfig
from tests.sim.test_cmd_simulate import _model

ROOT = utterance.ROOT


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("utt")
    m = _model()
    save(d / "q4.ckpt", m)
    (d / "fit.json").write_text(fit_config(HardwareConfig.tiny(), IntRNNT.from_model(m)).to_json())
    ex = d / "examples"
    ex.mkdir()
    first = json.loads((ROOT / "examples" / "manifest.jsonl").read_text().splitlines()[0])
    shutil.copy(ROOT / "examples" / first["audio"].split("/")[-1], ex)
    (ex / "manifest.jsonl").write_text(json.dumps(first) + "\n")
    (d / "README.md").write_text("# x\n<!-- utterance:begin -->\nold\n<!-- utterance:end -->\n")
    return d


def _argv(d, *extra):
    return ["--model", str(d / "q4.ckpt"), "--hw", str(d / "fit.json"), "--examples",
            str(d / "examples"), "--out", str(d / "out"), "--no-progress", *extra]


def test_table_targets_cache_and_readme(setup, capsys, monkeypatch):
    d = setup
    argv = _argv(d, "--simulators", "functional", "--compare-frames", "1", "--beam", "2",
                 "--readme", str(d / "README.md"), "--json")
    assert utterance.main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    (u,) = r["utterances"]
    assert u["bit_exact"] and u["transcript_equals_int"] and u["frames"] > 1
    # the shipped language model, as `zeroskip simulate` uses it with a beam
    assert (r["lm"] is not None) == (ROOT / "models" / "lm.json.gz").exists()
    assert r["compare"][0]["frames"] == 1 and r["compare"][0]["cycles"] < u["cycles"]
    names = [t["target"] for t in r["targets"]]
    assert len(names) == 6 and r["targets"][0]["pass"] is True
    eff = next(t for t in r["targets"] if "efficiency" in t["target"])
    assert eff["value"] == pytest.approx(u["ideal_mac_cycles"] / u["matvec_cycles"])
    readme = (d / "README.md").read_text()
    assert "old" not in readme and "| 01-weather.wav |" in readme and "Targets:" in readme
    assert readme.startswith("# x\n<!-- utterance:begin -->")
    # A rerun takes every report from the cache: nothing is simulated.
    monkeypatch.setattr("sim.commands.simulate.simulate",
                        lambda **k: pytest.fail("simulated again"))
    assert utterance.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["utterances"] == r["utterances"]


def test_cycle_mismatch_between_simulators_fails_its_target():
    base = dict(sim_cycles=10, sim_wall_seconds=1.0, wall_seconds=1.0, audio_seconds=3.0,
                ideal_mac_cycles=9, matvec_cycles=10, rtf=0.01, bit_exact=True,
                transcript_equals_int=True, simulator="verilator", cycles=5)
    cmp_ = [dict(base), dict(base, simulator="icarus", cycles=6), dict(base, simulator="functional", cycles=7)]
    t = {x["target"]: x for x in utterance.targets([base], cmp_)}
    assert t["identical cycles on every cycle-accurate simulator"]["pass"] is False
    cmp_[1]["cycles"] = 5
    t = {x["target"]: x for x in utterance.targets([base], cmp_)}
    assert t["identical cycles on every cycle-accurate simulator"]["pass"] is True
    assert t["MATVEC efficiency over all utterances"]["pass"] is True       # 0.9
    # one cycle-accurate simulator (or none, part 2 skipped): nothing to compare
    for cmp_ in ([dict(base)], []):
        t = {x["target"]: x for x in utterance.targets([base], cmp_)}
        assert t["identical cycles on every cycle-accurate simulator"]["pass"] is None


@pytest.mark.parametrize("extra, match", [
    (("--model", "/nonexistent/x.ckpt"), "does not exist"),
    (("--simulators", "verilator,quartus"), "choose from"),
    (("--hw", "/nonexistent/hw.json"), "--hw"),
    (("--lm", "/nonexistent/lm.json.gz"), "language model /nonexistent/lm.json.gz does not exist"),
])
def test_errors_are_one_line_exit_2(setup, capsys, extra, match):
    d = setup
    argv = _argv(d)
    i = argv.index(extra[0]) if extra[0] in argv else None
    if i is not None:
        argv[i + 1] = extra[1]
    else:
        argv += list(extra)
    assert utterance.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_readme_without_markers_is_refused_before_any_work(setup, capsys, monkeypatch):
    d = setup
    (d / "bad.md").write_text("# no markers\n")
    monkeypatch.setattr("sim.commands.simulate.simulate",
                        lambda **k: pytest.fail("simulated before checking the README"))
    assert utterance.main(_argv(d, "--readme", str(d / "bad.md"))) == 2
    assert "utterance:begin" in capsys.readouterr().err
    assert (d / "bad.md").read_text() == "# no markers\n"
