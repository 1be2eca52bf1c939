"""``zeroskip curves`` on two tiny training runs: the per-epoch dev WER of each run's history,
labels naming what sets the runs apart, the PNG, and the error paths."""

import json

import pytest

from model.checkpoint import load
from model.train import train
from sim.cli import main
from tests.model.test_train import KW, _corpus


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("curves")
    corpus = _corpus(d / "corpus")
    train(manifest_dir=corpus, out=d / "a.ckpt", cache_dir=d / "features", **KW)
    train(manifest_dir=corpus, out=d / "b.ckpt", cache_dir=d / "features",
          **dict(KW, dropout=0.2, epochs=2))
    return d


def test_json_and_plot(runs, capsys, tmp_path):
    png = tmp_path / "ab.png"
    code = main(["curves", str(runs / "a.ckpt"), str(runs / "b.ckpt.last"), "--out", str(png),
                 "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    a, b = out["runs"]
    assert [r["path"] for r in out["runs"]] == [str(runs / "a.ckpt"), str(runs / "b.ckpt")]
    assert a["label"] == "a.ckpt (dropout=0.0)" and b["label"] == "b.ckpt (dropout=0.2)"
    assert (a["epochs_done"], a["epochs_planned"], b["epochs_done"]) == (3, 3, 2)
    for r in (a, b):
        hist = load(r["path"] + ".last", train_state=True).train_state["history"]["epochs"]
        assert r["dev_wer"] == {str(e["epoch"]): e["dev_wer"] for e in hist}
        assert r["best_dev_wer"] == min(e["dev_wer"] for e in hist)
        assert r["last_dev_wer"] == hist[-1]["dev_wer"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_table(runs, capsys):
    assert main(["curves", str(runs / "a.ckpt"), str(runs / "b.ckpt")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("[1] a.ckpt (dropout=0.0): 3/3 epochs, best dev WER ")
    assert "\n[2] b.ckpt (dropout=0.2): 2/2 epochs" in text
    assert "epoch      [1]      [2]" in text
    assert text.rstrip().splitlines()[-1].split()[0] == "3" and text.rstrip().endswith("-")


def test_errors(runs, capsys, tmp_path):
    assert main(["curves", str(runs / "a.ckpt"), str(tmp_path / "none.ckpt")]) == 2
    err = capsys.readouterr().err
    assert "none.ckpt.last does not exist" in err and err.count("\n") == 1
    (tmp_path / "bad.ckpt.last").write_bytes(b"not a checkpoint")
    assert main(["curves", str(tmp_path / "bad.ckpt")]) == 2
    assert "bad.ckpt.last" in capsys.readouterr().err
