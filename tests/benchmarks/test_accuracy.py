"""benchmarks/accuracy.py on a throwaway corpus with tiny, untrained checkpoints.

The models are random (their transcripts are noise), so these tests check the benchmark's
contract: which rows are measured or "not trained", that the figures are the evaluator's, the
per-row cache, the README block, the targets' logic and the exit statuses. PocketSphinx is left
out (``--skip-pocketsphinx``) or replaced by a stand-in: it is slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmarks.accuracy as accuracy
from model.audio import write_wav
from model.checkpoint import read_header, save
from model.evaluate import error_rates
from model.rnnt import rnnt

TEXTS = ["turn on the light", "call bob", "stop"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "wav").mkdir()
    rng = np.random.default_rng(0)
    for split, texts in (("train", TEXTS), ("test", TEXTS)):
        rows = []
        for i, text in enumerate(texts):
            uid = f"{split}-{i}"
            n = int(16000 * (0.4 + 0.1 * i))
            t = np.arange(n) / 16000
            audio = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(n)
            write_wav(root / "wav" / f"{uid}.wav", audio.astype(np.float32))
            # the test split's last sentence comes from a template training never saw
            template = f"t.{i}" if split == "train" or i < 2 else "t.new"
            rows.append(dict(id=uid, audio=f"wav/{uid}.wav", text=text, duration=n / 16000,
                             voice="v", speed=175, pitch=50, snr_db=20.0, template=template,
                             split=split, intent="call" if "call" in text else "device"))
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _tiny(seed, w_bits=None):
    torch.manual_seed(seed)
    m = rnnt(preset="tiny")
    if w_bits:
        m.set_quantization(w_bits=w_bits, activations=True)
    return m


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpts")
    save(d / "fp32.ckpt", _tiny(0))
    save(d / "qat4.ckpt", _tiny(1, 4))
    return d


def _models(tmp_path, checkpoints, *names):
    d = tmp_path / "models"
    d.mkdir()
    for n in names:
        (d / n).write_bytes((checkpoints / n).read_bytes())
    return d


def _run(capsys, corpus, models, out, *extra):
    """accuracy.py on the test corpus; the shipped default is MODELS/default.ckpt (not the
    repository's models/default.ckpt)."""
    code = accuracy.main(["--manifest", str(corpus / "test.jsonl"), "--models", str(models),
                          "--out", str(out), "--no-progress", "--skip-pocketsphinx", "--json",
                          "--default", str(Path(models) / "default.ckpt"), *extra])
    cap = capsys.readouterr()
    return code, (json.loads(cap.out) if code == 0 else None), cap.err


@pytest.fixture
def counted(monkeypatch):
    """Count the evaluator's calls (the real one still runs)."""
    calls = []
    real = accuracy.evaluate_checkpoint

    def evaluate(model, entries, **kw):
        calls.append(kw.get("desc"))
        return real(model, entries, **kw)

    monkeypatch.setattr(accuracy, "evaluate_checkpoint", evaluate)
    return calls


def test_missing_checkpoints_are_not_trained(corpus, checkpoints, tmp_path, capsys, counted):
    models = _models(tmp_path, checkpoints, "qat4.ckpt")
    code, result, _ = _run(capsys, corpus, models, tmp_path / "out")
    assert code == 0
    rows = {r["key"]: r for r in result["rows"]}
    assert [r["key"] for r in result["rows"]] == [r.key for r in accuracy.ROWS]
    assert counted == ["qat4"]
    assert rows["qat4"]["status"] == "ok"
    for key in ("fp32", "ptq8", "ptq4", "qat8", "prune50-ptq4", "prune80-ptq4", "prune90-ptq4",
                "qat4-s50", "qat4-s80", "qat4-s90"):
        assert rows[key]["status"] == "not trained"
        assert rows[key]["reason"] == accuracy.NOT_TRAINED == "not trained (make model-all)"
    for key in ("default", "default-int", "default-beam4", "default-beam4-lm", "default-beam8-lm"):
        assert rows[key]["status"] == "not trained"
        assert rows[key]["reason"] == "not trained (make model)"
    assert rows["pocketsphinx"]["status"] == "not measured"
    assert {t["status"] for t in result["targets"]} == {"not measured"}
    md = (tmp_path / "out" / "accuracy.md").read_text()
    assert "| fp32 | | | not trained (make model-all) |" in md
    assert md.count("**not measured**") == len(result["targets"])


def test_fp32_and_qat_rows_and_the_cache(corpus, checkpoints, tmp_path, capsys, counted):
    models = _models(tmp_path, checkpoints, "fp32.ckpt", "qat4.ckpt")
    out = tmp_path / "out"
    code, result, _ = _run(capsys, corpus, models, out)
    assert code == 0
    computed = ["fp32", "ptq8", "ptq4", "qat4", "prune50-ptq4", "prune80-ptq4", "prune90-ptq4"]
    assert counted == computed
    rows = {r["key"]: r for r in result["rows"]}
    assert {k for k, r in rows.items() if r["status"] == "ok"} == set(computed)
    assert result["utterances"] == 3 and result["held_out_utterances"] == 1
    for key in computed:
        r = rows[key]
        assert not r["cached"]
        assert 0 <= r["cer"] and 0 <= r["wer"] and r["wer_held_out"] is not None
        assert r["utterances"] == 3 and r["held_out_utterances"] == 1
        cache = json.loads((out / "accuracy" / f"{key}.json").read_text())
        utts = cache["utterances"]
        assert [u["ref"] for u in utts] == TEXTS
        assert r["wer"] == error_rates([u["ref"] for u in utts], [u["hyp"] for u in utts])["wer"]
    fp32, qat4 = rows["fp32"], rows["qat4"]
    params = sum(p.numel() for p in _tiny(0).parameters())
    assert fp32["footprint"] == dict(bytes=4 * params, bits_per_weight=32.0,
                                     fp32_bytes=4 * params, ratio=1.0)
    assert qat4["w_bits"] == 4 and 1 < qat4["footprint"]["ratio"] < 8
    assert qat4["footprint"]["ratio"] == pytest.approx(4 * params / qat4["footprint"]["bytes"])
    for s in (50, 80, 90):
        assert rows[f"prune{s}-ptq4"]["sparsity"] == pytest.approx(s / 100, abs=0.01)
    assert rows["ptq8"]["footprint"]["bytes"] > rows["ptq4"]["footprint"]["bytes"]
    assert json.loads((out / "accuracy.json").read_text())["rows"][0]["wer"] == fp32["wer"]
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "accuracy.md").read_text()
    assert "| QAT 4-bit | 4-bit | 0.0 % |" in md and "x smaller |" in md
    # WER by condition: the fp32 column (the only one of its systems measured) over the
    # cached hypotheses; the corpus has no noise field, one SNR, one held-out sentence, two
    # intents (groups in sorted order)
    utts = json.loads((out / "accuracy" / "fp32.json").read_text())["utterances"]

    def wer(idx):
        return error_rates([utts[i]["ref"] for i in idx], [utts[i]["hyp"] for i in idx])["wer"]

    assert [(c["label"], c["utterances"], c["wer"]) for c in result["conditions"]] == [
        ("seen templates", 2, {"fp32": wer([0, 1])}),
        ("held-out templates", 1, {"fp32": wer([2])}),
        ("SNR 20-30 dB", 3, {"fp32": fp32["wer"]}),
        ("intent: call", 1, {"fp32": wer([1])}),
        ("intent: device", 2, {"fp32": wer([0, 2])})]
    assert "| condition | utterances | fp32 |\n|---|---|---|\n| seen templates | 2 |" in md

    # a rerun recomputes nothing
    code, again, _ = _run(capsys, corpus, models, out)
    assert code == 0 and counted == computed
    assert all(r["cached"] for r in again["rows"] if r["status"] == "ok")
    assert [r.get("wer") for r in again["rows"]] == [r.get("wer") for r in result["rows"]]

    # a changed checkpoint recomputes its own row only; a changed limit every row
    save(models / "qat4.ckpt", _tiny(2, 4))
    _run(capsys, corpus, models, out)
    assert counted == computed + ["qat4"]
    del counted[:]
    _run(capsys, corpus, models, out, "--limit", "2")
    assert counted == computed


def test_an_interrupted_run_resumes(corpus, checkpoints, tmp_path, capsys, monkeypatch):
    models = _models(tmp_path, checkpoints, "fp32.ckpt")
    real, calls = accuracy.evaluate_checkpoint, []

    def dies_on_ptq4(model, entries, **kw):
        calls.append(kw["desc"])
        if kw["desc"] == "ptq4":
            raise KeyboardInterrupt
        return real(model, entries, **kw)

    monkeypatch.setattr(accuracy, "evaluate_checkpoint", dies_on_ptq4)
    with pytest.raises(KeyboardInterrupt):
        _run(capsys, corpus, models, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "accuracy").glob("*.json")) == \
        ["fp32.json", "ptq8.json"]
    del calls[:]
    monkeypatch.setattr(accuracy, "evaluate_checkpoint",
                        lambda m, e, **kw: calls.append(kw["desc"]) or real(m, e, **kw))
    code, result, _ = _run(capsys, corpus, models, tmp_path / "out")
    assert code == 0
    assert calls == ["ptq4", "prune50-ptq4", "prune80-ptq4", "prune90-ptq4"]


README = "# zeroskip\n\nintro\n\n{b}\nold table\n{e}\n\n## after\n\nmore text\n"


def test_readme_block_is_replaced(corpus, checkpoints, tmp_path, capsys):
    models = _models(tmp_path, checkpoints, "qat4.ckpt")
    readme = tmp_path / "README.md"
    readme.write_text(README.format(b=accuracy.BEGIN, e=accuracy.END))
    code, result, _ = _run(capsys, corpus, models, tmp_path / "out", "--readme", str(readme))
    assert code == 0
    text = readme.read_text()
    head, rest = text.split(accuracy.BEGIN)
    block, tail = rest.split(accuracy.END)
    assert head == "# zeroskip\n\nintro\n\n" and tail == "\n\n## after\n\nmore text\n"
    assert "old table" not in block
    md = (tmp_path / "out" / "accuracy.md").read_text()
    assert block.strip() == md.strip()
    assert "| QAT 4-bit | 4-bit |" in block and "Targets (issue 3)" in block
    assert "Produced by `.venv/bin/python benchmarks/accuracy.py --manifest " in block


@pytest.mark.parametrize("text", ["# no markers\n", "{e}\nreversed\n{b}\n", "{b}\nonly begin\n"])
def test_readme_without_markers_is_refused(corpus, checkpoints, tmp_path, capsys, counted, text):
    models = _models(tmp_path, checkpoints, "qat4.ckpt")
    readme = tmp_path / "README.md"
    readme.write_text(text.format(b=accuracy.BEGIN, e=accuracy.END))
    before = readme.read_bytes()
    code, _, err = _run(capsys, corpus, models, tmp_path / "out", "--readme", str(readme))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "README.md" in err and accuracy.BEGIN in err and "unchanged" in err
    assert readme.read_bytes() == before
    assert counted == [] and not (tmp_path / "out" / "accuracy.json").exists()


def test_corrupt_checkpoint_exits_2(corpus, checkpoints, tmp_path, capsys, counted):
    models = _models(tmp_path, checkpoints, "qat4.ckpt")
    blob = (checkpoints / "fp32.ckpt").read_bytes()
    (models / "fp32.ckpt").write_bytes(blob[:len(blob) // 2])
    code, _, err = _run(capsys, corpus, models, tmp_path / "out")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert str(models / "fp32.ckpt") in err and "truncated" in err
    assert counted == []


def test_checkpoint_with_the_wrong_width_exits_2(corpus, checkpoints, tmp_path, capsys):
    models = _models(tmp_path, checkpoints)
    (models / "qat8.ckpt").write_bytes((checkpoints / "qat4.ckpt").read_bytes())
    code, _, err = _run(capsys, corpus, models, tmp_path / "out")
    assert code == 2
    assert "qat8.ckpt: expected 8-bit weights" in err and len(err.strip().splitlines()) == 1


def test_pocketsphinx_row_with_a_stand_in(corpus, checkpoints, tmp_path, capsys, monkeypatch):
    seen = {}

    def fake(entries, *, train_manifest, workdir, train_templates, progress):
        seen.update(train=train_manifest, n=len(entries), templates=train_templates)
        from model.evaluate import evaluate
        return evaluate(entries, lambda e: "call bob", train_templates=train_templates,
                        progress=False)

    monkeypatch.setattr(accuracy, "pocketsphinx_report", fake)
    models = _models(tmp_path, checkpoints)
    code = accuracy.main(["--manifest", str(corpus / "test.jsonl"), "--models", str(models),
                          "--out", str(tmp_path / "out"), "--no-progress", "--limit", "2",
                          "--default", str(models / "default.ckpt")])
    out = capsys.readouterr().out
    assert code == 0
    assert seen == dict(train=corpus / "train.jsonl", n=2, templates={"t.0", "t.1", "t.2"})
    # the printed table: "call bob" for ("turn on the light", "call bob"): 4 of 6 words wrong
    assert "| PocketSphinx en-us + domain trigram LM | — | — | 66.67 % |" in out
    assert "**not measured** QAT 4-bit + 80 % pruning WER <= 1/3 of PocketSphinx's" in out


def _row(key, wer, **kw):
    return dict(key=key, status="ok", wer=wer, **kw)


@pytest.mark.parametrize("q80, q80i, expect", [
    (0.055, 0.060, ["pass", "pass", "pass", "pass", "pass", "pass"]),
    (0.065, 0.0701, ["pass", "fail", "pass", "pass", "fail", "fail"]),
    (0.065, 0.060, ["pass", "fail", "pass", "pass", "fail", "pass"]),
])
def test_targets(q80, q80i, expect):
    fp = dict(bytes=1000, fp32_bytes=20000, ratio=20.0)
    rows = [_row("fp32", 0.05), _row("prune80-ptq4", 0.30),
            _row("qat4-s80", 0.5, footprint=dict(fp, bytes=5000), sparsity=0.8, w_bits=4),
            _row("default", q80, footprint=fp, sparsity=0.8, w_bits=4),
            _row("default-int", q80i), _row("pocketsphinx", 0.18)]
    assert [t["status"] for t in accuracy.targets(rows)] == expect
    assert all(t["detail"].startswith("shipped default ") for t in accuracy.targets(rows)[1:5])
    assert "1.80 bits per weight" in accuracy.targets(rows)[3]["detail"]
    fp.update(bytes=1001)
    assert accuracy.targets(rows)[3]["status"] == "fail"
    # PocketSphinx is compared with the shipped default's best decoding
    rows.append(_row("default-beam4-lm", 0.059))
    t = accuracy.targets(rows)[4]
    assert t["status"] == "pass"                       # 0.055 or 0.059 <= 0.18 / 3
    assert ("(greedy)" if q80 < 0.059 else "(beam 4 + LM)") in t["detail"]
    # without the shipped default, the qat4-s80 row is judged (its integer target unmeasured)
    no_default = [r for r in rows if not r["key"].startswith("default")]
    judged = accuracy.targets(no_default)
    assert [t["status"] for t in judged] == ["pass", "fail", "fail", "fail", "fail",
                                             "not measured"]
    assert judged[1]["detail"].startswith("qat4-s80 50.00 %")
    rows[0] = dict(key="fp32", status="not trained", reason=accuracy.NOT_TRAINED)
    assert [t["status"] for t in accuracy.targets(rows)][:2] == ["not measured"] * 2


def test_integer_row_decodes_with_the_integer_reference(corpus, checkpoints, tmp_path, capsys,
                                                        monkeypatch):
    """``default-int`` scores the shipped default's IntRNNT decoder, whose transcripts are
    :class:`model.intref.IntDecoder`'s, beside the fake-quantized ``default`` row; the
    ``default-beam4`` row decodes the same model with beam 4 (a cache key of its own)."""
    from model.intref import IntDecoder
    models = tmp_path / "models"
    models.mkdir()
    (models / "default.ckpt").write_bytes((checkpoints / "qat4.ckpt").read_bytes())
    seen = []
    real = accuracy.evaluate_checkpoint

    def evaluate(model, entries, **kw):
        seen.append((kw.get("desc"), type(model).__name__, kw.get("beam", 1),
                     kw.get("fusion") is not None))
        return real(model, entries, **kw)

    from model.lm import CharLM
    lm = tmp_path / "lm.json.gz"
    CharLM.train(["turn on the light", "call bob"], order=3, weight=0.4, bonus=0.1).save(lm)
    monkeypatch.setattr(accuracy, "evaluate_checkpoint", evaluate)
    code, result, _ = _run(capsys, corpus, models, tmp_path / "out", "--lm", str(lm))
    assert code == 0
    assert seen == [("default", "RNNT", 1, False),
                    ("default-int", IntDecoder.__name__, 1, False),
                    ("default-beam4", "RNNT", 4, False), ("default-beam4-lm", "RNNT", 4, True),
                    ("default-beam8-lm", "RNNT", 8, True)]
    lm_key = json.loads((tmp_path / "out" / "accuracy" / "default-beam4-lm.json").read_text())
    assert lm_key["key"]["decoding"] == "beam 4 + LM"
    assert lm_key["key"]["lm"]["weight"] == 0.4 and lm_key["key"]["lm"]["bonus"] == 0.1
    # without the language model file the row is not measured, and the others stay cached
    seen.clear()
    code, again, _ = _run(capsys, corpus, models, tmp_path / "out", "--lm", str(tmp_path / "no"))
    assert code == 0 and seen == []
    lm_row = {r["key"]: r for r in again["rows"]}["default-beam4-lm"]
    assert lm_row["status"] == "not measured" and "make lm" in lm_row["reason"]
    rows = {r["key"]: r for r in result["rows"]}
    assert rows["default-beam4"]["status"] == "ok"
    keys = {k: json.loads((tmp_path / "out" / "accuracy" / f"{k}.json").read_text())["key"]
            for k in ("default", "default-beam4")}
    assert keys["default"]["decoding"] == "greedy" and keys["default-beam4"]["decoding"] == "beam 4"
    assert rows["default-int"]["status"] == "ok"
    assert rows["default-int"]["footprint"] == rows["default"]["footprint"]
    t = [t for t in result["targets"] if "integer reference" in t["name"]]
    assert len(t) == 1 and t[0]["status"] in ("pass", "fail")


def test_rows_selects_what_is_computed(corpus, checkpoints, tmp_path, capsys, counted):
    """``--rows`` computes only the named rows; the others come from the cache or are 'not
    measured'; an unknown row is a usage error."""
    code, result, _ = _run(capsys, corpus, checkpoints, tmp_path / "out", "--rows", "fp32,ptq8")
    assert code == 0
    assert sorted(c for c in counted) == ["fp32", "ptq8"]
    rows = {r["key"]: r for r in result["rows"]}
    assert rows["fp32"]["status"] == rows["ptq8"]["status"] == "ok"
    assert rows["ptq4"]["status"] == "not measured"
    assert "--rows fp32,ptq8" in result["command"]
    counted.clear()
    code, result, _ = _run(capsys, corpus, checkpoints, tmp_path / "out", "--rows", "ptq4")
    rows = {r["key"]: r for r in result["rows"]}
    assert counted == ["ptq4"] and rows["fp32"]["cached"] is True
    with pytest.raises(SystemExit):
        accuracy.main(["--rows", "nonsense"])
    assert "unknown row(s) nonsense" in capsys.readouterr().err


def test_rows_not_fine_tuned_from_this_fp32_are_named(corpus, checkpoints, tmp_path, capsys):
    """A fine-tuned checkpoint records its initial checkpoint's SHA-256; the table names the rows
    that were not fine-tuned from its fp32.ckpt, or that do not say."""
    models = _models(tmp_path, checkpoints, "fp32.ckpt", "qat4.ckpt")
    base = read_header(models / "fp32.ckpt")["sha256"]
    save(models / "qat8.ckpt", _tiny(3, 8), metrics=dict(init_sha256=base))
    save(models / "qat4-s80.ckpt", _tiny(4, 4), metrics=dict(init_sha256="ab" * 32))
    assert accuracy.lineage(models) == {
        "qat8.ckpt": dict(init_sha256=base, via=[], from_fp32=True),
        "qat4.ckpt": dict(init_sha256=None, via=[], from_fp32=None),
        "qat4-s80.ckpt": dict(init_sha256="ab" * 32, via=[], from_fp32=False)}
    code, result, _ = _run(capsys, corpus, models, tmp_path / "out", "--rows",
                           "fp32,qat8,qat4,qat4-s80")
    assert code == 0
    rows = {r["key"]: r for r in result["rows"]}
    assert rows["qat8"]["from_fp32"] is True and rows["qat4-s80"]["from_fp32"] is False
    assert "from_fp32" not in rows["fp32"]
    md = (tmp_path / "out" / "accuracy.md").read_text()
    note = next(line for line in md.splitlines() if line.startswith("Not fine-tuned"))
    assert "QAT 4-bit: not recorded" in note
    assert "QAT 4-bit + gradual pruning 80 %: initialized from another model (SHA-256 abababababab)" \
        in note
    assert "QAT 8-bit" not in note
    within = next(t for t in result["targets"] if t["name"].startswith("QAT 4-bit + 80 % pruning within"))
    assert within["detail"].endswith("(not fine-tuned from this fp32 model)")


def test_lineage_follows_the_chain_through_the_tables_checkpoints(checkpoints, tmp_path):
    """The shipped default fine-tuned from qat4-s80.ckpt, itself from fp32.ckpt, counts as
    fine-tuned from fp32; a chain that leaves the table's checkpoints, or a link that does not
    record its origin, does not."""
    models = _models(tmp_path, checkpoints, "fp32.ckpt")
    base = read_header(models / "fp32.ckpt")["sha256"]
    save(models / "qat4-s80.ckpt", _tiny(4, 4), metrics=dict(init_sha256=base))
    mid = read_header(models / "qat4-s80.ckpt")["sha256"]
    shipped = tmp_path / "shipped.ckpt"
    save(shipped, _tiny(5, 4), metrics=dict(init_sha256=mid))
    got = accuracy.lineage(models, default=shipped)
    assert got["default.ckpt"] == dict(init_sha256=mid, via=["qat4-s80.ckpt"], from_fp32=True)
    assert got["qat4-s80.ckpt"] == dict(init_sha256=base, via=[], from_fp32=True)
    # through a checkpoint of the models directory that is no row of the table (a first polish
    # stage); an unreadable file there is passed over
    save(models / "default-polish1.ckpt", _tiny(6, 4), metrics=dict(init_sha256=mid))
    (models / "broken.ckpt").write_bytes(b"not a checkpoint")
    polish1 = read_header(models / "default-polish1.ckpt")["sha256"]
    save(shipped, _tiny(5, 4), metrics=dict(init_sha256=polish1))
    got = accuracy.lineage(models, default=shipped)
    assert got["default.ckpt"] == dict(init_sha256=polish1,
                                       via=["default-polish1.ckpt", "qat4-s80.ckpt"],
                                       from_fp32=True)
    assert set(got) == {"default.ckpt", "qat4-s80.ckpt"}
    (models / "default-polish1.ckpt").unlink()
    # qat4-s80 from elsewhere: the default's chain ends outside this table's fp32
    save(models / "qat4-s80.ckpt", _tiny(4, 4), metrics=dict(init_sha256="cd" * 32))
    mid = read_header(models / "qat4-s80.ckpt")["sha256"]
    save(shipped, _tiny(5, 4), metrics=dict(init_sha256=mid))
    got = accuracy.lineage(models, default=shipped)
    assert got["default.ckpt"] == dict(init_sha256=mid, via=["qat4-s80.ckpt"], from_fp32=False)
    assert accuracy._origin(got["default.ckpt"]) == \
        "fine-tuned from qat4-s80.ckpt, from another model"
    # ... and a link without a record leaves it unknown
    save(models / "qat4-s80.ckpt", _tiny(4, 4))
    mid = read_header(models / "qat4-s80.ckpt")["sha256"]
    save(shipped, _tiny(5, 4), metrics=dict(init_sha256=mid))
    got = accuracy.lineage(models, default=shipped)
    assert got["default.ckpt"] == dict(init_sha256=mid, via=["qat4-s80.ckpt"], from_fp32=None)
    assert accuracy._origin(got["default.ckpt"]) == "fine-tuned from qat4-s80.ckpt, not recorded"


def test_plot_needs_a_row_with_a_footprint(tmp_path):
    rows = [dict(key="fp32", status="not trained"), dict(key="pocketsphinx", status="ok",
                                                          wer=0.5, footprint=None)]
    result = dict(rows=rows, utterances=3, manifest="test.jsonl")
    assert accuracy.plot(result, tmp_path / "a.png") is False
    assert not (tmp_path / "a.png").exists()
