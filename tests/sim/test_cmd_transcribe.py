"""``zeroskip transcribe`` and ``zeroskip eval`` end to end on a small random model.

The model is untrained (its transcripts are noise), so these tests check the commands' contract:
output fields, n-best ranking, error handling per file, exit statuses, and that ``eval``'s
figures are the error rates of the hypotheses it reports.
"""

import json

import numpy as np
import pytest
import torch

from model.audio import write_wav
from model.checkpoint import save
from model.evaluate import error_rates
from model.rnnt import rnnt
from sim.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("transcribe")
    torch.manual_seed(0)
    save(d / "tiny.ckpt", rnnt(preset="tiny"))
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i, f0 in enumerate((220.0, 330.0)):
        audio = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        write_wav(d / f"a{i}.wav", audio + 0.01 * rng.standard_normal(len(t)))
    write_wav(d / "silent.wav", np.zeros(8000))
    (d / "text.wav").write_text("not audio at all\n")
    (d / "empty.wav").write_bytes(b"")
    lines = [{"id": f"u{i}", "audio": f"a{i}.wav", "text": text, "duration": 1.0, "voice": "x",
              "speed": 175, "pitch": 50, "snr_db": None, "template": f"t.{i}", "split": "test",
              "heldout": bool(i)} for i, text in enumerate(("turn on the light", "call bob"))]
    (d / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_json_fields_and_nbest(files, capsys):
    code = main(["transcribe", "--model", str(files / "tiny.ckpt"), "--beam", "3", "--nbest", "3",
                 "--json", str(files / "a0.wav"), str(files / "a1.wav")])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [o["audio"] for o in out] == [str(files / "a0.wav"), str(files / "a1.wav")]
    for o in out:
        scores = [h["score"] for h in o["nbest"]]
        assert 1 <= len(o["nbest"]) <= 3
        assert scores == sorted(scores, reverse=True)
        assert len({h["text"] for h in o["nbest"]}) == len(o["nbest"])
        assert o["text"] == o["nbest"][0]["text"]
        assert o["duration"] == pytest.approx(1.0)


def test_bad_files_are_reported_and_the_rest_transcribed(files, capsys):
    args = ["transcribe", "--model", str(files / "tiny.ckpt"), "--beam", "1", "--json"]
    names = ["text.wav", "a0.wav", "empty.wav", "silent.wav", "missing.wav", "a1.wav"]
    code = main(args + [str(files / n) for n in names])
    cap = capsys.readouterr()
    done = [json.loads(x)["audio"] for x in cap.out.splitlines()]
    assert code == 1
    assert done == [str(files / "a0.wav"), str(files / "a1.wav")]
    errors = cap.err.strip().splitlines()
    assert len(errors) == 4
    assert "text.wav is not an audio file" in errors[0]
    assert "empty.wav is empty" in errors[1]
    assert "silent.wav is silent" in errors[2]
    assert "missing.wav" in errors[3]


@pytest.mark.parametrize("make, match", [
    (lambda d: d / "nope.ckpt", "does not exist"),
    (lambda d: d / "text.wav", "not a zeroskip checkpoint"),
])
def test_unusable_model_is_exit_2(files, capsys, make, match):
    code = main(["transcribe", "--model", str(make(files)), str(files / "a0.wav")])
    assert code == 2
    assert match in capsys.readouterr().err


def test_truncated_checkpoint_is_exit_2(files, capsys, tmp_path):
    blob = (files / "tiny.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(blob[:len(blob) // 2])
    assert main(["transcribe", "--model", str(tmp_path / "cut.ckpt"), str(files / "a0.wav")]) == 2
    assert "cut.ckpt" in capsys.readouterr().err


def test_nbest_above_beam_is_a_usage_error(files, capsys):
    code = main(["transcribe", "--model", str(files / "tiny.ckpt"), "--beam", "2", "--nbest", "3",
                 str(files / "a0.wav")])
    assert code == 2
    assert "--nbest 3 is more than the beam width 2" in capsys.readouterr().err


@pytest.mark.parametrize("beam", [1, 2])
def test_eval_reports_the_error_rates_of_its_hypotheses(files, capsys, tmp_path, beam):
    out = tmp_path / "report.json"
    code = main(["eval", "--manifest", str(files / "test.jsonl"), "--model",
                 str(files / "tiny.ckpt"), "--beam", str(beam), "--json", "--no-progress",
                 "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    full = json.loads(out.read_text())
    utts = full["utterances"]
    assert [u["ref"] for u in utts] == ["turn on the light", "call bob"]
    assert summary["all"] == error_rates([u["ref"] for u in utts], [u["hyp"] for u in utts])
    assert summary["seen_templates"]["utterances"] == 1
    assert summary["held_out_templates"]["utterances"] == 1


def test_eval_by_fields(files, capsys, tmp_path):
    out = tmp_path / "report.json"
    code = main(["eval", "--manifest", str(files / "test.jsonl"), "--model",
                 str(files / "tiny.ckpt"), "--json", "--no-progress", "--out", str(out),
                 "--by", "heldout,speed:100,snr_db"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    utts = json.loads(out.read_text())["utterances"]
    assert list(summary["by"]) == ["heldout", "speed:100", "snr_db"]
    assert [g["group"] for g in summary["by"]["heldout"]] == ["False", "True"]
    for g, u in zip(summary["by"]["heldout"], utts):
        assert g == {"group": g["group"], **error_rates([u["ref"]], [u["hyp"]])}
    assert summary["by"]["speed:100"] == [{"group": "100-200", **summary["all"]}]
    assert summary["by"]["snr_db"] == [{"group": "none", **summary["all"]}]
    code = main(["eval", "--manifest", str(files / "test.jsonl"), "--model",
                 str(files / "tiny.ckpt"), "--no-progress", "--by", "template"])
    text = capsys.readouterr().out
    assert code == 0 and "template  utterances     WER      CER" in text
    assert "\nt.0  " in text and "\nt.1  " in text


@pytest.mark.parametrize("by, message", [
    ("room", "--by no utterance has the field 'room'; the manifest's fields are audio, duration"),
    ("voice:10", "--by voice:10: utterance u0: value 'x' is not a number"),
    ("speed:0", "--by 'speed:0': the bin width must be a positive number"),
])
def test_eval_by_errors_before_decoding(files, capsys, by, message, monkeypatch):
    import sim.commands.eval as ev
    monkeypatch.setattr(ev, "evaluate_checkpoint", lambda *a, **k: pytest.fail("decoded"))
    code = main(["eval", "--manifest", str(files / "test.jsonl"), "--model",
                 str(files / "tiny.ckpt"), "--by", by])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_eval_bad_manifest(files, capsys, tmp_path):
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    assert main(["eval", "--manifest", str(tmp_path / "bad.jsonl"),
                 "--model", str(files / "tiny.ckpt")]) == 2
    assert "bad.jsonl" in capsys.readouterr().err


def test_error_rates_by_hand():
    r = error_rates(["turn on the light", "call bob"], ["turn the lights", ""])
    # words: "on" deleted, "light" -> "lights" substituted; "call bob" deleted: 1 S + 3 D of 6
    assert (r["substitutions"], r["deletions"], r["insertions"], r["words"]) == (1, 3, 0, 6)
    assert r["wer"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rates(["a", "b"], ["a"])


@pytest.fixture(scope="module")
def qfile(files):
    torch.manual_seed(1)
    m = rnnt(preset="tiny")
    m.set_quantization(w_bits=4, activations=True)
    save(files / "tiny-q4.ckpt", m)
    return files / "tiny-q4.ckpt"


@pytest.mark.parametrize("beam", [1, 2])
def test_eval_int_scores_the_transcripts_of_transcribe_int(files, qfile, capsys, tmp_path, beam):
    """``eval --int`` (batched greedy or beam) gives each utterance the text that
    ``transcribe --int`` prints for it."""
    out = tmp_path / "report.json"
    code = main(["eval", "--manifest", str(files / "test.jsonl"), "--model", str(qfile),
                 "--int", "--beam", str(beam), "--json", "--no-progress", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["system"].endswith("(integer reference)")
    hyps = [u["hyp"] for u in json.loads(out.read_text())["utterances"]]
    assert main(["transcribe", "--int", "--beam", str(beam), "--json", "--model", str(qfile),
                 str(files / "a0.wav"), str(files / "a1.wav")]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert hyps == [x["text"] for x in lines]


def test_eval_int_refuses_a_float_model_and_pocketsphinx(files, capsys):
    assert main(["eval", "--manifest", str(files / "test.jsonl"), "--model",
                 str(files / "tiny.ckpt"), "--int", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zeroskip eval: error: --int: ") and len(err.strip().splitlines()) == 1
    assert main(["eval", "--manifest", str(files / "test.jsonl"), "--baseline", "pocketsphinx",
                 "--int"]) == 2
    assert "does not apply to --baseline pocketsphinx" in capsys.readouterr().err


# -- the domain language model (`zeroskip lm`, `--lm`) ----------------------------------------

LM_TEXTS = ["turn on the light", "turn off the light", "call bob", "call alice smith",
            "set a timer for ten minutes"]


@pytest.fixture(scope="module")
def lmfile(files):
    corpus = files / "lmcorpus"
    corpus.mkdir()
    lines = [{"id": f"t{i}", "audio": "x.wav", "text": t, "duration": 1.0, "voice": "x",
              "speed": 175, "pitch": 50, "snr_db": None, "template": "t.0", "split": "train"}
             for i, t in enumerate(LM_TEXTS)]
    (corpus / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = files / "lm.json.gz"
    assert main(["lm", "--corpus", str(corpus), "--out", str(out), "--order", "4",
                 "--weight", "0.8", "--bonus", "0.3", "--json"]) == 0
    return out


def test_lm_command_writes_a_model(lmfile, capsys):
    from model.lm import CharLM
    lm = CharLM.load(lmfile)
    assert (lm.order, lm.sentences, lm.weight, lm.bonus) == (4, len(LM_TEXTS), 0.8, 0.3)
    assert lm.words == {w for t in LM_TEXTS for w in t.split()} and lm.lexicon == 0.0
    out = lmfile.parent / "lex.json.gz"
    assert main(["lm", "--corpus", str(lmfile.parent / "lmcorpus"), "--out", str(out),
                 "--lexicon", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["lexicon"] == 3.0 and summary["words"] == len(lm.words)
    assert CharLM.load(out).fusion().info["lexicon"] == 3.0
    assert main(["lm", "--corpus", str(lmfile.parent / "nowhere"), "--out",
                 str(lmfile.parent / "x.gz")]) == 2
    assert "nowhere" in capsys.readouterr().err


def _transcribe(files, *extra):
    return ["transcribe", "--model", str(files / "tiny.ckpt"), "--json", *extra,
            str(files / "a0.wav"), str(files / "a1.wav")]


def test_transcribe_with_a_language_model(files, lmfile, capsys):
    assert main(_transcribe(files, "--beam", "3")) == 0
    plain = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert main(_transcribe(files, "--beam", "3", "--lm", str(lmfile))) == 0
    fused = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert main(_transcribe(files, "--beam", "3", "--lm", str(lmfile), "--lm-weight", "0",
                            "--lm-bonus", "0")) == 0
    zero = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [z["nbest"] for z in zero] == [p["nbest"] for p in plain]
    assert [f["nbest"] for f in fused] != [p["nbest"] for p in plain]
    assert fused[0]["lm"] == {"order": 4, "weight": 0.8, "bonus": 0.3, "lexicon": 0.0}
    assert plain[0]["lm"] is None
    for f in fused:
        scores = [h["score"] for h in f["nbest"]]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("extra, match", [
    (["--beam", "1", "--lm", "LM"], "use --beam 2 or more"),
    (["--lm-weight", "0.5"], "no language model is used"),
    (["--lm", "LM", "--no-lm"], "contradict"),
    (["--lm", "BAD"], "not a zeroskip language model"),
    (["--lm", "LM", "--lm-weight", "-1"], "weight must be a finite number >= 0"),
    (["--lm", "LM", "--lm-lexicon", "-1"], "lexicon penalty must be a finite number >= 0"),
    (["--beam", "3", "--lm-lexicon", "2"], "no language model is used"),
])
def test_language_model_errors_are_exit_2(files, lmfile, capsys, extra, match):
    extra = [str(lmfile) if x == "LM" else str(files / "text.wav") if x == "BAD" else x
             for x in extra]
    assert main(_transcribe(files, *extra)) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_shipped_language_model_is_the_default_for_the_default_model(files, lmfile, capsys,
                                                                     monkeypatch):
    monkeypatch.setattr("sim.commands.transcribe.DEFAULT_MODEL", files / "tiny.ckpt")
    monkeypatch.setattr("sim.commands.lm.DEFAULT_LM", lmfile)
    args = ["transcribe", "--json", "--beam", "3", str(files / "a0.wav")]
    runs = {}
    for name, extra in [("default", []), ("no-lm", ["--no-lm"]), ("lm", ["--lm", str(lmfile)]),
                        ("greedy", ["--beam", "1"])]:
        assert main(args[:-1] + extra + args[-1:]) == 0
        runs[name] = json.loads(capsys.readouterr().out)["nbest"]
    assert runs["default"] == runs["lm"] != runs["no-lm"]
    assert len(runs["greedy"]) == 1                     # greedy decoding: no language model
    assert main(_transcribe(files, "--beam", "3", "--no-lm")) == 0   # explicit model: no LM
    capsys.readouterr()


def test_eval_with_a_language_model(files, lmfile, capsys, tmp_path):
    out = tmp_path / "report.json"
    assert main(["eval", "--manifest", str(files / "test.jsonl"), "--model",
                 str(files / "tiny.ckpt"), "--beam", "3", "--lm", str(lmfile), "--json",
                 "--no-progress", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "language model" in summary["system"]
    assert summary["lm"] == {"path": str(lmfile), "order": 4, "weight": 0.8, "bonus": 0.3,
                             "lexicon": 0.0}
    hyps = [u["hyp"] for u in json.loads(out.read_text())["utterances"]]
    assert main(_transcribe(files, "--beam", "3", "--nbest", "1", "--lm", str(lmfile))) == 0
    assert hyps == [json.loads(x)["text"] for x in capsys.readouterr().out.splitlines()]
    assert main(["eval", "--manifest", str(files / "test.jsonl"), "--baseline", "pocketsphinx",
                 "--beam", "2", "--lm", str(lmfile)]) == 2
    assert "PocketSphinx has its own" in capsys.readouterr().err
