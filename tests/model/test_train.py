"""Tests of model/train.py: the loop on synthetic data, its pieces, and train() end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_equal

from model.audio import write_wav
from model.checkpoint import load, read_header
from model.decode import greedy_batch
from model.frontend import FEATURE_DIM, N_MELS, dequantize_features
from model.qat import fake_quant_weight
from model.rnnt import rnnt
from model.train import (TrainConfig, TrainError, UtteranceSet, collate, fit, lr_at,
                         make_batches, spec_augment, train, evaluate_wer)

TEXTS = ["yes", "no", "stop", "go on"]


def _synthetic(seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = [torch.randint(-128, 128, (n, FEATURE_DIM), generator=g).to(torch.int8)
             for n in (7, 6, 8, 8)]
    return UtteranceSet.from_codes(codes, TEXTS)


def _model(data, seed=0):
    torch.manual_seed(seed)
    m = rnnt(preset="tiny")
    x = dequantize_features(torch.cat(data.codes)).double()
    m.set_feature_normalization(x.mean(0).float(), x.std(0).float())
    return m


def test_fit_memorizes_synthetic_utterances():
    data = _synthetic()
    m = _model(data)
    cfg = TrainConfig(preset="tiny", epochs=200, batch_size=2, lr=1e-2, warmup_steps=10,
                      spec_augment=False)
    r = fit(m, data, None, cfg, progress=False, log=None)
    loss = r["history"]["loss"]
    assert r["steps"] == 400
    assert sum(loss[-10:]) / 10 < 0.05 * sum(loss[:10]) / 10
    feats, lengths, _, _ = collate(data, [0, 1, 2, 3])
    assert greedy_batch(m.eval(), feats, lengths) == TEXTS


def test_fit_with_qat_and_gradual_pruning():
    data = _synthetic(1)
    m = _model(data, seed=1)
    cfg = TrainConfig(preset="tiny", epochs=200, batch_size=2, lr=1e-2, warmup_steps=10,
                      spec_augment=False, w_bits=8, sparsity=0.5, qat_start=0.3,
                      acos_ramp=0.3, prune_start=0.1, prune_end=0.6)
    r = fit(m, data, None, cfg, progress=False, log=None)
    loss = r["history"]["loss"]
    assert sum(loss[-10:]) / 10 < 0.15 * sum(loss[:10]) / 10
    assert bool(m.act_quant) and set(m.w_bits.values()) == {8}
    for name, layer in m.matrices().items():
        w = layer.weight
        assert int((w == 0).sum()) == math.floor(0.5 * w.numel() + 0.5), name
    eps = r["history"]["epochs"]
    assert [e["quantized"] for e in eps][:59] == [False] * 59 and eps[-1]["quantized"]
    sparsities = [e["sparsity"] for e in eps]
    assert sparsities[9] == 0.0 and sparsities == sorted(sparsities)
    r = evaluate_wer(m, data)                   # the quantized, pruned model decodes
    assert len(r["hyps"]) == 4 and 0.0 <= r["wer"] <= 1.0 and r["hyps"][1] == "no"


def test_make_batches():
    lengths = [5, 50, 7, 30, 30, 8, 49, 1, 20, 21]
    g = torch.Generator().manual_seed(0)
    batches = make_batches(lengths, batch_size=3, batch_frames=100, generator=g)
    assert sorted(i for b in batches for i in b) == list(range(10))
    for b in batches:
        assert len(b) <= 3 and len(b) * max(lengths[i] for i in b) <= 100
    # buckets are runs of the length-sorted order
    rank = {i: r for r, i in enumerate(sorted(range(10), key=lambda i: (lengths[i], i)))}
    for b in batches:
        rs = sorted(rank[i] for i in b)
        assert rs == list(range(rs[0], rs[0] + len(rs))) or len({lengths[i] for i in b}) < len(b)
    again = make_batches(lengths, batch_size=3, batch_frames=100,
                         generator=torch.Generator().manual_seed(0))
    assert again == batches
    # an utterance longer than batch_frames gets a bucket of its own
    assert make_batches([500, 3], batch_size=8, batch_frames=100,
                        generator=torch.Generator().manual_seed(0)) in ([[1], [0]], [[0], [1]])


def test_spec_augment_masks_only_valid_frames():
    feats = torch.randn(3, 40, FEATURE_DIM) + 5
    lengths = torch.tensor([40, 25, 0])
    feats[1, 25:] = 0
    x = spec_augment(feats.clone(), lengths, torch.Generator().manual_seed(1), freq_width=8,
                     time_width=5)
    assert (x[1, 25:] == 0).all() and (x[2] == feats[2]).all()
    for n in (0, 1):
        L = int(lengths[n])
        changed = (x[n, :L] != feats[n, :L])
        cols = changed.any(0).reshape(3, N_MELS)
        rows = changed.all(1)
        # frequency masks hit the same mel bins in the three stacked 10 ms frames
        assert (cols[0] == cols[1]).all() and (cols[1] == cols[2]).all()
        assert int(rows.sum()) <= 2 * min(5, int(0.1 * L))
        fill = feats[n, :L].mean(0)
        assert torch.allclose(x[n, :L][changed], fill.expand(L, -1)[changed])
    y = spec_augment(feats.clone(), lengths, torch.Generator().manual_seed(1), freq_width=8,
                     time_width=5)
    assert_equal(x.numpy(), y.numpy())


def test_lr_schedule():
    kw = dict(lr=1.0, warmup=10, total=110, min_ratio=0.1)
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_at(110, **kw) == pytest.approx(0.1)


def test_collate_pads():
    data = _synthetic()
    feats, lengths, targets, tl = collate(data, [1, 2])
    assert feats.shape == (2, 8, FEATURE_DIM)
    assert_equal(lengths.numpy(), [6, 8])
    assert (feats[0, 6:] == 0).all()
    assert_equal(feats[1].numpy(), dequantize_features(data.codes[2]).numpy())
    assert_equal(targets.numpy(), [[16, 17, 0, 0], [21, 22, 17, 18]])
    assert_equal(tl.numpy(), [2, 4])


def test_config_errors():
    with pytest.raises(TrainError, match="unknown preset 'big'"):
        TrainConfig(preset="big")
    with pytest.raises(TrainError, match="w_bits must be None, 4 or 8"):
        TrainConfig(w_bits=2)
    with pytest.raises(TrainError, match="sparsity must be between 0 and 1"):
        TrainConfig(sparsity=1.0)


# -- train() end to end on a throwaway corpus --------------------------------------------------

def _corpus(root):
    rng = np.random.default_rng(0)
    root.mkdir()
    (root / "wav").mkdir()
    for split, texts in (("train", TEXTS), ("dev", TEXTS[:2])):
        rows = []
        for i, text in enumerate(texts):
            uid = f"{split}-{i}"
            n = int(16000 * (0.4 + 0.1 * i))
            t = np.arange(n) / 16000
            audio = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(n)
            write_wav(root / "wav" / f"{uid}.wav", audio.astype(np.float32))
            rows.append(dict(id=uid, audio=f"wav/{uid}.wav", text=text, duration=n / 16000,
                             voice="v", speed=175, pitch=50, snr_db=20.0, template="t",
                             split=split))
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


KW = dict(preset="tiny", epochs=3, batch_size=2, lr=5e-3, warmup_steps=2, progress=False,
          log=None)


def test_train_end_to_end_and_resume_is_deterministic(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    out_a = tmp_path / "a" / "model.ckpt"
    r = train(manifest_dir=corpus, out=out_a, cache_dir=cache, **KW)
    assert out_a.exists() and out_a.with_suffix(".png").exists()
    assert (tmp_path / "a" / "model.ckpt.last").exists()
    assert len(list(cache.iterdir())) == 2                     # train and dev features cached
    assert r["steps"] == 6 and r["epochs"] == 3 and r["best_epoch"] == 3
    assert read_header(out_a)["metrics"]["epoch"] == 3
    assert len(r["history"]["epochs"]) == 3

    out_b = tmp_path / "b" / "model.ckpt"
    r1 = train(manifest_dir=corpus, out=out_b, cache_dir=cache, max_steps=3, **KW)
    assert r1["stopped"] and r1["steps"] == 3
    assert read_header(out_b)["metrics"]["epoch"] == 1          # the best so far
    r2 = train(manifest_dir=corpus, out=out_b, cache_dir=cache, **KW)
    assert r2["steps"] == 6
    a, b = load(out_a).model.state_dict(), load(out_b).model.state_dict()
    for k in a:
        assert_equal(a[k].numpy(), b[k].numpy())

    with pytest.raises(TrainError, match=r"was trained with lr=0.005, not 0.001"):
        train(manifest_dir=corpus, out=out_b, cache_dir=cache, **dict(KW, lr=1e-3))


def test_train_post_training_quantization_and_init(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    fp = tmp_path / "fp.ckpt"
    train(manifest_dir=corpus, out=fp, cache_dir=cache, **KW)
    out = tmp_path / "ptq.ckpt"
    r = train(manifest_dir=corpus, out=out, cache_dir=cache, w_bits=8, qat=False,
              init_from=fp, **dict(KW, epochs=1))
    ck = load(out)
    assert set(ck.model.w_bits.values()) == {8} and bool(ck.model.act_quant)
    assert "ptq_dev_wer" in r and ck.metrics["qat"] is False
    with pytest.raises(TrainError, match=r"--init: .*shape mismatch"):
        train(manifest_dir=corpus, out=tmp_path / "x.ckpt", cache_dir=cache, init_from=fp,
              model=dict(enc_hidden=8), **KW)
    with pytest.raises(TrainError, match="no training utterances"):
        train(manifest_dir=tmp_path, out=tmp_path / "y.ckpt", cache_dir=cache, **KW)


def test_resume_says_when_the_init_checkpoint_changed(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    base = tmp_path / "base.ckpt"
    train(manifest_dir=corpus, out=base, cache_dir=cache, **dict(KW, epochs=1))
    out = tmp_path / "ft.ckpt"
    kw = dict(manifest_dir=corpus, out=out, cache_dir=cache, init_from=base, w_bits=8)
    train(max_steps=1, **kw, **KW)                   # stopped: ft.ckpt.last holds the run

    def resumed(**extra):
        lines = []
        train(**kw, **dict(KW, log=lines.append, **extra))
        return [line for line in lines if line.startswith("note:")]

    assert resumed(max_steps=1) == []                # same --init: nothing to say
    train(manifest_dir=corpus, out=base, cache_dir=cache, resume=False,
          **dict(KW, epochs=1, seed=1))              # the base replaced by other weights
    notes = resumed(max_steps=1)
    assert len(notes) == 1 and "ft.ckpt.last was started from other weights than" in notes[0]
    assert "--no-resume" in notes[0]
    r = train(**kw, **dict(KW, resume=False))       # starting over records the new base
    assert r["steps"] == 6
    assert read_header(out)["metrics"]["init_sha256"] == read_header(base)["sha256"]


def test_an_interrupt_between_steps_saves_a_state_that_resumes_exactly(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    out_a, out_b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    train(manifest_dir=corpus, out=out_a, cache_dir=cache, **KW)     # 6 steps, uninterrupted
    asked = []

    def interrupt():                                  # asked before every step: stop before the 4th
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(KeyboardInterrupt):
        train(manifest_dir=corpus, out=out_b, cache_dir=cache, interrupt=interrupt, **KW)
    state = load(out_b.with_name("b.ckpt.last"), train_state=True).train_state
    assert state["step"] == 3
    r = train(manifest_dir=corpus, out=out_b, cache_dir=cache, **KW)
    assert r["steps"] == 6
    a, b = load(out_a).model.state_dict(), load(out_b).model.state_dict()
    for k in a:
        assert_equal(a[k].numpy(), b[k].numpy())


def test_stop_after_epoch_cuts_the_schedule_and_resumes_exactly(tmp_path):
    """stop_after_epoch stops once that many epochs are done with the schedules still planned
    over all epochs; going on without it gives the uninterrupted run's weights."""
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    whole = tmp_path / "whole.ckpt"
    r = train(manifest_dir=corpus, out=whole, cache_dir=cache, **KW)
    cut = tmp_path / "cut.ckpt"
    r1 = train(manifest_dir=corpus, out=cut, cache_dir=cache, stop_after_epoch=2, **KW)
    assert r1["stopped"] and r1["epochs"] == 2 and r1["steps"] == 4
    assert read_header(cut)["metrics"]["epoch"] == 2
    lr_cut = [e["lr"] for e in r1["history"]["epochs"]]
    assert lr_cut == [e["lr"] for e in r["history"]["epochs"][:2]]   # the 3-epoch schedule
    again = train(manifest_dir=corpus, out=cut, cache_dir=cache, stop_after_epoch=2, **KW)
    assert again["stopped"] and again["steps"] == 4                  # nothing more to do
    r2 = train(manifest_dir=corpus, out=cut, cache_dir=cache, **KW)
    assert not r2["stopped"] and r2["steps"] == r["steps"]
    a, b = load(whole).model.state_dict(), load(cut).model.state_dict()
    for k in a:
        assert_equal(a[k].numpy(), b[k].numpy())
    with pytest.raises(TrainError, match="stop_after_epoch must be at least 1"):
        train(manifest_dir=corpus, out=cut, cache_dir=cache, stop_after_epoch=0, **KW)


def test_fine_tuned_checkpoints_record_their_initial_checkpoint(tmp_path):
    """The SHA-256 of the --init checkpoint goes into the metrics of every checkpoint the run
    saves, also after a resume (when the initial file may have changed since)."""
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    base = tmp_path / "base.ckpt"
    train(manifest_dir=corpus, out=base, cache_dir=cache, **dict(KW, epochs=1))
    assert "init_sha256" not in read_header(base)["metrics"]      # trained from scratch
    sha = read_header(base)["sha256"]
    out = tmp_path / "ft.ckpt"
    train(manifest_dir=corpus, out=out, cache_dir=cache, init_from=base, max_steps=3,
          **dict(KW, w_bits=8))
    assert read_header(out)["metrics"]["init_sha256"] == sha
    base.write_bytes(b"replaced")
    train(manifest_dir=corpus, out=out, cache_dir=cache, init_from=base, **dict(KW, w_bits=8))
    assert read_header(out)["metrics"]["init_sha256"] == sha      # from the resumed state
    ptq = tmp_path / "ptq.ckpt"
    train(manifest_dir=corpus, out=ptq, cache_dir=cache, init_from=out, w_bits=8, qat=False,
          **dict(KW, epochs=0))
    assert read_header(ptq)["metrics"]["init_sha256"] == read_header(out)["sha256"]


def test_fine_tuning_a_pruned_checkpoint_keeps_its_pruned_weights(tmp_path):
    """--init of a pruned checkpoint with --sparsity: pruning continues from its masks (no
    weight pruned before regrows), and a target below its sparsity is refused."""
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    first = tmp_path / "s50.ckpt"
    train(manifest_dir=corpus, out=first, cache_dir=cache, w_bits=8, sparsity=0.5, **KW)
    before = load(first)
    out = tmp_path / "s70.ckpt"
    logs = []
    train(manifest_dir=corpus, out=out, cache_dir=cache, w_bits=8, sparsity=0.7,
          init_from=first, **dict(KW, log=logs.append))
    assert any("continues from the initial checkpoint's masks" in line for line in logs)
    after = load(out)
    for k, layer in after.model.matrices().items():
        was_pruned = ~before.masks[k]
        assert bool((layer.weight[was_pruned] == 0).all()), k
        assert int((layer.weight == 0).sum()) == math.floor(0.7 * layer.weight.numel() + 0.5), k
    with pytest.raises(TrainError, match=r"--sparsity: .*already 50.0 % sparse"):
        train(manifest_dir=corpus, out=tmp_path / "s30.ckpt", cache_dir=cache, w_bits=8,
              sparsity=0.3, init_from=first, **KW)


def test_fake_quant_weights_after_qat_are_the_quantized_ones():
    """After QAT the forward pass uses exactly the per-row grid of the effective weights."""
    data = _synthetic(2)
    m = _model(data, seed=2)
    cfg = TrainConfig(preset="tiny", epochs=5, batch_size=4, lr=5e-3, warmup_steps=1,
                      spec_augment=False, w_bits=4, qat_start=0.0, acos_ramp=0.0,
                      acos_lambda=5.0)
    fit(m, data, None, cfg, progress=False, log=None)
    for layer in m.matrices().values():
        wq, _ = layer.weight_bias()
        w, _ = layer.effective_weight()
        assert_equal(wq.detach().numpy(), fake_quant_weight(w, 4, layer.col_step)[0].detach().numpy())


def test_post_training_quantization_without_training(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    fp = tmp_path / "fp.ckpt"
    train(manifest_dir=corpus, out=fp, cache_dir=cache, **dict(KW, epochs=1))
    out = tmp_path / "ptq.ckpt"
    r = train(manifest_dir=corpus, out=out, cache_dir=cache, w_bits=4, qat=False, init_from=fp,
              **dict(KW, epochs=0))
    assert r["steps"] == 0
    q, f = load(out).model, load(fp).model
    assert set(q.w_bits.values()) == {4}
    for k, v in f.state_dict().items():                 # the same weights, now quantized
        if k not in ("act_quant", "logit_observer.frozen") and not k.endswith("w_bits"):
            assert_equal(q.state_dict()[k].numpy(), v.numpy())
    with pytest.raises(TrainError, match="epochs=0 .* needs init_from"):
        train(manifest_dir=corpus, out=out, cache_dir=cache, **dict(KW, epochs=0))


def test_ctc_auxiliary_loss_matches_per_utterance_ctc_and_leaves_rnnt_loss_alone():
    data = _synthetic(2)
    m = _model(data, seed=2)
    feats, lengths, targets, tl = collate(data, [0, 1, 2, 3])
    head = torch.nn.Linear(m.hparams["joint_dim"], m.vocab_size)
    rnnt_only = m.loss(feats, lengths, targets, tl)
    rnnt_too, ctc = m.loss(feats, lengths, targets, tl, ctc_head=head)
    assert torch.equal(rnnt_only, rnnt_too)
    lp = torch.log_softmax(head(m.transcribe(feats, lengths)[0]), -1)
    ref = sum(torch.nn.functional.ctc_loss(lp[n, :lengths[n]], targets[n, :tl[n]],
                                           lengths[n:n + 1], tl[n:n + 1], reduction="sum")
              for n in range(4)) / 4
    assert torch.allclose(ctc, ref, rtol=1e-5)


def test_train_with_ctc_weight_resumes_exactly(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    kw = dict(KW, ctc_weight=0.3)
    out_a, out_b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    train(manifest_dir=corpus, out=out_a, cache_dir=cache, **kw)
    train(manifest_dir=corpus, out=out_b, cache_dir=cache, max_steps=3, **kw)
    assert load(out_b.with_name("b.ckpt.last"), train_state=True).train_state["ctc_head"]
    train(manifest_dir=corpus, out=out_b, cache_dir=cache, **kw)     # resumes, head included
    a, b = load(out_a).model.state_dict(), load(out_b).model.state_dict()
    assert not [k for k in a if "ctc" in k]                           # no CTC head in the model
    for k in a:
        assert_equal(a[k].numpy(), b[k].numpy())
    with pytest.raises(TrainError, match="was trained with ctc_weight=0.3, not 0.0"):
        train(manifest_dir=corpus, out=out_b, cache_dir=cache, **KW)
    with pytest.raises(TrainError, match="ctc_weight must be in"):
        TrainConfig(ctc_weight=1.5)


def test_dropout_acts_in_training_mode_only():
    torch.manual_seed(0)
    m = rnnt(preset="tiny")
    feats = torch.randn(2, 7, m.hparams["feature_dim"])
    tokens = torch.randint(1, m.vocab_size, (2, 4))
    m.eval()
    enc0, _, _ = m.transcribe(feats)
    pred0, _ = m.predict(tokens)
    m.dropout = 0.5
    enc1, _, _ = m.transcribe(feats)                  # evaluation mode: no dropout
    pred1, _ = m.predict(tokens)
    assert torch.equal(enc0, enc1) and torch.equal(pred0, pred1)
    m.train()
    enc2, _, _ = m.transcribe(feats)
    enc3, _, _ = m.transcribe(feats)
    pred2, _ = m.predict(tokens)
    assert not torch.equal(enc2, enc0) and not torch.equal(enc2, enc3)
    assert not torch.equal(pred2, pred0)
    m.dropout = 0.0
    enc4, _, _ = m.transcribe(feats)                  # training mode without dropout
    assert torch.allclose(enc4, enc0)


def test_train_with_dropout_resumes_exactly(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    cache = tmp_path / "features"
    kw = dict(KW, dropout=0.2)
    out_a, out_b, out_c = tmp_path / "a.ckpt", tmp_path / "b.ckpt", tmp_path / "c.ckpt"
    train(manifest_dir=corpus, out=out_a, cache_dir=cache, **kw)
    train(manifest_dir=corpus, out=out_b, cache_dir=cache, max_steps=3, **kw)
    train(manifest_dir=corpus, out=out_b, cache_dir=cache, **kw)     # resumes
    train(manifest_dir=corpus, out=out_c, cache_dir=cache, **KW)     # no dropout
    a, b, c = (load(o).model.state_dict() for o in (out_a, out_b, out_c))
    for k in a:
        assert_equal(a[k].numpy(), b[k].numpy())
    assert any(not torch.equal(a[k], c[k]) for k in a)               # dropout changed training
    with pytest.raises(TrainError, match="was trained with dropout=0.2, not 0.0"):
        train(manifest_dir=corpus, out=out_b, cache_dir=cache, **KW)
    for bad in (-0.1, 1.0):
        with pytest.raises(TrainError, match="dropout must be in"):
            TrainConfig(dropout=bad)
