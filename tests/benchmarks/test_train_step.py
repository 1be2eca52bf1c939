"""benchmarks/train_step.py on a small batch: both ways of computing the training lattice give
the same loss, every step is timed, and the arguments are checked."""

import json

import pytest

import benchmarks.train_step as train_step


def test_small_batch(capsys):
    assert train_step.main(["--batch", "2", "--frames", "6", "--labels", "3", "--repeat", "2",
                            "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["quant"] for r in out["runs"]] == [False, True]
    for r in out["runs"]:
        assert r["loss"]["chunked"] == pytest.approx(r["loss"]["autograd"], rel=1e-6)
        assert all(len(v) == 2 and min(v) > 0 for v in r["seconds"].values())
        assert r["speedup"] == pytest.approx(r["median"]["autograd"] / r["median"]["chunked"])


def test_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        train_step.main(["--repeat", "0"])
    assert e.value.code == 2 and "--repeat must be at least 1" in capsys.readouterr().err
