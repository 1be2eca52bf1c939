"""Tests of model/checkpoint.py: round trips and every way a file can be unusable."""

from __future__ import annotations

import json

import pytest
import torch
from numpy.testing import assert_equal

from model import checkpoint as ckpt
from model.checkpoint import CheckpointError, load, load_into, read_header, save
from model.prune import prune_post_training, masks_of
from model.rnnt import rnnt


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    m = rnnt(preset="tiny", **kw)
    m.set_feature_normalization(torch.linspace(-5, 0, 192), torch.linspace(1, 3, 192))
    return m


def _inputs():
    g = torch.Generator().manual_seed(0)
    feats = ((torch.randint(-128, 128, (2, 8, 192), generator=g) - 20) * (3 / 32)).float()
    return feats, torch.tensor([8, 5]), torch.tensor([[3, 4, 5], [6, 7, 0]])


def test_round_trip(tmp_path):
    m = prune_post_training(_model(), 0.5)
    m.set_quantization(w_bits=4, overrides={"out": 8})
    m.logit_observer.maxabs.fill_(13.5)
    masks = masks_of(m)
    state = dict(step=7, epoch=1, history=dict(loss=[3.0, 2.0]), rng=torch.get_rng_state())
    path = tmp_path / "m.ckpt"
    save(path, m, masks=masks, metrics=dict(dev_wer=0.25), train_state=state)
    ck = load(path, train_state=True)
    q = ck.model
    assert q.hparams == m.hparams and not q.training
    assert q.w_bits == m.w_bits and bool(q.act_quant)
    assert float(q.logit_observer.maxabs) == 13.5
    for k, v in m.state_dict().items():
        assert_equal(q.state_dict()[k].numpy(), v.numpy())
    for k in masks:
        assert_equal(ck.masks[k].numpy(), masks[k].numpy())
    assert ck.metrics == {"dev_wer": 0.25}
    assert ck.train_state["step"] == 7 and ck.train_state["history"]["loss"] == [3.0, 2.0]
    assert_equal(ck.train_state["rng"].numpy(), state["rng"].numpy())
    m.eval()
    with torch.no_grad():
        assert_equal(q(*_inputs()).numpy(), m(*_inputs()).numpy())
    assert load(path).train_state is None
    h = read_header(path)
    assert h["format"] == "zeroskip-rnnt" and h["version"] == 1 and h["has_train_state"]
    assert h["w_bits"]["out"] == 8 and h["activations"] is True
    assert h["sparsity"]["encoder.0"] == pytest.approx(0.5, abs=1e-3)
    assert h["metrics"] == {"dev_wer": 0.25}
    # the quantization spec travels with the weights
    raw = torch.load(__import__("io").BytesIO(path.read_bytes().split(b"\n", 2)[2]),
                     weights_only=True)
    assert raw["quant"]["layers"]["out"]["w_bits"] == 8
    assert raw["quant"]["joint"]["logit_step"] == pytest.approx(13.5 / 127)


def test_load_into_an_existing_model(tmp_path):
    save(tmp_path / "a.ckpt", _model(seed=1))
    m = _model(seed=2)
    load_into(m, tmp_path / "a.ckpt")
    for k, v in _model(seed=1).state_dict().items():
        assert_equal(m.state_dict()[k].numpy(), v.numpy())


def _one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as e:
        load(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.wav"
    p.write_bytes(b"RIFF....WAVEfmt ")
    _one_line_error(p, "not a zeroskip checkpoint")
    p2 = tmp_path / "y.pt"
    torch.save({"state_dict": {}}, p2)
    _one_line_error(p2, "not a zeroskip checkpoint")
    _one_line_error(tmp_path / "missing.ckpt", "no such checkpoint file")
    _one_line_error(tmp_path, "is a directory")


def test_truncated(tmp_path):
    p = tmp_path / "m.ckpt"
    save(p, _model())
    data = p.read_bytes()
    header_end = data.index(b"\n", len(ckpt.MAGIC))
    for cut in (5, len(ckpt.MAGIC) + 10, header_end + 100, len(data) - 1):
        q = tmp_path / f"cut{cut}.ckpt"
        q.write_bytes(data[:cut])
        _one_line_error(q, "truncated")
    q = tmp_path / "long.ckpt"
    q.write_bytes(data + b"xx")
    _one_line_error(q, "trailing data")


def test_corrupt(tmp_path):
    p = tmp_path / "m.ckpt"
    save(p, _model())
    data = bytearray(p.read_bytes())
    data[-1000] ^= 0x40
    p.write_bytes(bytes(data))
    _one_line_error(p, r"corrupt checkpoint \(SHA-256")
    data = p.read_bytes()
    bad = ckpt.MAGIC + b"{not json\n" + data.split(b"\n", 2)[2]
    p.write_bytes(bad)
    _one_line_error(p, "corrupt checkpoint header")


def _rewrite_header(path, **changes):
    data = path.read_bytes()
    head, body = data[len(ckpt.MAGIC):].split(b"\n", 1)
    h = json.loads(head)
    h.update(changes)
    path.write_bytes(ckpt.MAGIC + json.dumps(h).encode() + b"\n" + body)


def test_wrong_version_and_format(tmp_path):
    p = tmp_path / "m.ckpt"
    save(p, _model())
    _rewrite_header(p, version=2)
    _one_line_error(p, "format version 2; this zeroskip reads version 1")
    save(p, _model())
    _rewrite_header(p, format="other-model")
    _one_line_error(p, "checkpoint format 'other-model'")


def test_shape_mismatch(tmp_path):
    p = tmp_path / "m.ckpt"
    save(p, _model())
    bigger = rnnt(preset="tiny", enc_hidden=24)
    with pytest.raises(CheckpointError, match=r"shape mismatch for encoder.0.weight: \(64, 208\) "
                                              r"in the checkpoint, \(96, 216\) in the model"):
        load_into(bigger, p)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_into(rnnt(preset="tiny", enc_layers=3), p)


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "m.ckpt"
    save(p, _model(seed=1))
    before = p.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save(p, _model(seed=2))
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.ckpt"]   # no temporary left


def test_save_checks_its_arguments(tmp_path):
    with pytest.raises(TypeError, match="model must be an RNNT"):
        save(tmp_path / "x", torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="masks for unknown matrices"):
        save(tmp_path / "x", _model(), masks={"nope": torch.ones(2, dtype=torch.bool)})


def test_keep_better(tmp_path):
    m = _model()
    save(tmp_path / "a.ckpt", m, metrics={"dev_wer": 0.30})
    save(tmp_path / "b.ckpt", m, metrics={"dev_wer": 0.25})
    save(tmp_path / "c.ckpt", m, metrics={"dev_wer": 0.40})
    save(tmp_path / "none.ckpt", m)
    base = tmp_path / "base.ckpt"
    assert ckpt.keep_better(tmp_path / "a.ckpt", base)                 # no base yet: copied
    assert read_header(base)["metrics"]["dev_wer"] == 0.30
    assert not ckpt.keep_better(tmp_path / "c.ckpt", base)             # worse: kept
    assert ckpt.keep_better(tmp_path / "b.ckpt", base)                 # better: replaced
    assert read_header(base)["metrics"]["dev_wer"] == 0.25
    with pytest.raises(CheckpointError, match="no dev_wer"):
        ckpt.keep_better(tmp_path / "none.ckpt", base)
    (tmp_path / "bad.ckpt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        ckpt.keep_better(tmp_path / "bad.ckpt", base)
    assert read_header(base)["metrics"]["dev_wer"] == 0.25            # nothing lost
