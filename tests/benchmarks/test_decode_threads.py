"""benchmarks/decode_threads.py: the OpenMP wait-policy benchmark (timing real `zeroskip eval`
runs of a tiny model; the figures themselves are the README's, not asserted)."""

from __future__ import annotations

import json

import numpy as np

import benchmarks.decode_threads as bench
from model.audio import write_wav
from model.checkpoint import save
from model.rnnt import rnnt


def _corpus(root):
    (root / "wav").mkdir(parents=True)
    rows = []
    for i, text in enumerate(["turn on the light", "stop"]):
        n = 16000 * (i + 1) // 2
        t = np.arange(n) / 16000
        write_wav(root / "wav" / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
        rows.append(dict(id=f"t{i}", audio=f"wav/t{i}.wav", text=text, duration=n / 16000,
                         voice="v", speed=175, pitch=50, snr_db=None, template=f"t.{i}",
                         split="test"))
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "test.jsonl"


def test_runs_every_setting(tmp_path, capsys):
    manifest = _corpus(tmp_path / "corpus")
    save(tmp_path / "tiny.ckpt", rnnt(preset="tiny"))
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- decode-threads:begin -->\nold\n<!-- decode-threads:end -->\n")
    code = bench.main(["--model", str(tmp_path / "tiny.ckpt"), "--manifest", str(manifest),
                       "--limit", "2", "--rounds", "1", "--busy", "0", "--beam", "2",
                       "--out", str(tmp_path / "out"), "--readme", str(readme), "--no-progress",
                       "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert [(r["load"], r["setting"]) for r in res["rows"]] == [
        ("idle", "PASSIVE"), ("idle", "ACTIVE"), ("idle", "1 thread")]
    assert res["rows"][0]["ratio"] == 1.0 and all(r["seconds"] > 0 for r in res["rows"])
    assert res["utterances"] == 2 and res["manifest"] == str(manifest)
    text = readme.read_text()
    assert "old" not in text and "| idle | ACTIVE waits |" in text and text.startswith("before")
    assert json.loads((tmp_path / "out" / "decode_threads.json").read_text())["wer"] == res["wer"]


def test_errors(tmp_path, capsys, monkeypatch):
    assert bench.main(["--model", str(tmp_path / "none.ckpt"), "--no-progress"]) == 2
    assert "does not exist (make model)" in capsys.readouterr().err
    # a readme without the block is refused before anything runs
    (tmp_path / "R.md").write_text("no markers\n")
    assert bench.main(["--readme", str(tmp_path / "R.md"), "--no-progress"]) == 2
    assert "decode-threads:begin" in capsys.readouterr().err
    # settings that decode differently are an error, not a speed figure
    manifest = _corpus(tmp_path / "corpus")
    save(tmp_path / "tiny.ckpt", rnnt(preset="tiny"))
    wers = iter([0.5, 0.25, 0.5])
    monkeypatch.setattr(bench, "_eval", lambda args, env: dict(seconds=1.0, wall=2.0,
                                                               wer=next(wers), utterances=2))
    assert bench.main(["--model", str(tmp_path / "tiny.ckpt"), "--manifest", str(manifest),
                       "--rounds", "1", "--busy", "0", "--no-progress"]) == 2
    assert "decoded differently" in capsys.readouterr().err
