"""``zeroskip corpus`` through ``sim.commands.corpus.register`` on a fresh argparse parser."""

import argparse
import json
from pathlib import Path

import pytest

from model.corpus import SPLITS, read_manifest
from sim.commands.corpus import register


def parser():
    p = argparse.ArgumentParser(prog="zeroskip")
    sub = p.add_subparsers(dest="command", required=True)
    register(sub)
    return p


def run(argv):
    args = parser().parse_args(argv)
    return args.handler(args)


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["corpus", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("--hours H", "--out DIR", "--seed N", "--workers N", "--json", "eSpeak NG",
                   "train,dev,test", "disjoint by", "held out", "byte for byte", "examples:"):
        assert phrase in text, phrase


def test_defaults():
    args = parser().parse_args(["corpus", "--hours", "0.5", "--out", "x"])
    assert (args.hours, args.out, args.seed, args.workers, args.json, args.progress) == \
        (0.5, "x", 0, None, False, True)


@pytest.mark.parametrize("argv, message", [
    (["corpus", "--out", "x"], "one of the arguments --hours --examples is required"),
    (["corpus", "--hours", "1", "--examples", "2", "--out", "x"], "not allowed with"),
    (["corpus", "--examples", "0", "--out", "x"], "0 must be positive"),
    (["corpus", "--hours", "0", "--out", "x"], "must be a positive number of hours"),
    (["corpus", "--hours", "a", "--out", "x"], "'a' is not a number"),
    (["corpus", "--hours", "1", "--out", "x", "--workers", "0"], "0 must be positive"),
    (["corpus", "--hours", "1", "--out", "x", "--word-sequences", "1"],
     "1.0 is not a fraction in [0, 1)"),
    (["corpus", "--hours", "1", "--out", "x", "--word-sequences", "x"], "'x' is not a number"),
])
def test_bad_arguments(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        parser().parse_args(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_json_run_and_rerun(capsys, tmp_path):
    out = tmp_path / "c"
    argv = ["corpus", "--hours", "0.001", "--out", str(out), "--seed", "2", "--workers", "1",
            "--json", "--no-progress"]
    assert run(argv) == 0
    report = json.loads(capsys.readouterr().out)
    n = sum(report["splits"][s]["utterances"] for s in SPLITS)
    assert report["run"]["synthesized"] == n and report["seed"] == 2
    for s in SPLITS:
        assert len(read_manifest(out / f"{s}.jsonl")) == report["splits"][s]["utterances"]
    assert run(argv[:-2] + ["--no-progress"]) == 0  # text output; everything already there
    text = capsys.readouterr().out
    assert f"0 synthesized, {n} already there" in text
    assert "train" in text and "held out" in text


def test_word_sequences(capsys, tmp_path):
    out = tmp_path / "w"
    assert run(["corpus", "--hours", "0.004", "--out", str(out), "--word-sequences", "0.5",
                "--workers", "1", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"]["word_sequences"] == 0.5
    train = read_manifest(out / "train.jsonl")
    words = [e for e in train if e["template"] == "words.0"]
    assert words and len(words) < len(train) and all(e["intent"] == "words" for e in words)


def test_errors_are_one_line_and_exit_2(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    argv = ["corpus", "--hours", "0.001", "--out", str(tmp_path / "file"), "--workers", "1"]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zeroskip corpus: error: cannot create") and "\n" not in err


def test_examples_are_test_utterances_with_manifest(capsys, tmp_path):
    out = tmp_path / "ex"
    assert run(["corpus", "--examples", "3", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = read_manifest(out / "manifest.jsonl")
    assert [r["id"] for r in rows] == [r["id"] for r in report["examples"]]
    assert len(rows) == 3 and all(r["split"] == "test" for r in rows)
    assert sum(r["heldout"] for r in rows) >= 2           # generalization, not memory
    assert len({r["intent"] for r in rows}) == 3
    names = sorted(p.name for p in out.glob("*.wav"))
    assert names == [Path(r["audio"]).name for r in rows]
    lines = (out / "transcripts.txt").read_text().splitlines()
    assert lines == [f"{Path(r['audio']).name}\t{r['text']}" for r in rows]
    first = {n: (out / n).read_bytes() for n in names}
    assert run(["corpus", "--examples", "3", "--out", str(out)]) == 0   # byte-deterministic
    assert "held-out template" in capsys.readouterr().out
    assert {n: (out / n).read_bytes() for n in names} == first


def test_example_count_limit(capsys, tmp_path):
    assert run(["corpus", "--examples", "51", "--out", str(tmp_path)]) == 2
    assert "count must be an int from 1 to 50" in capsys.readouterr().err
