"""Tests of model/prune.py: the cubic schedule, gradual and post-training pruning, footprints."""

from __future__ import annotations

import math

import pytest
import torch
from numpy.testing import assert_equal

from model.prune import (GradualPruner, cubic_sparsity, footprint, magnitude, masks_of,
                         prune_post_training, sparsity_report)
from model.quant import quantize_weight
from model.rnnt import rnnt


def test_cubic_schedule_by_hand():
    kw = dict(final=0.8, start=100, end=200)
    assert cubic_sparsity(0, **kw) == 0.0
    assert cubic_sparsity(99, **kw) == 0.0
    assert cubic_sparsity(100, **kw) == 0.0                       # s_i at t0
    assert cubic_sparsity(150, **kw) == pytest.approx(0.8 - 0.8 * 0.5 ** 3)   # 0.7
    assert cubic_sparsity(200, **kw) == 0.8
    assert cubic_sparsity(10 ** 6, **kw) == 0.8
    # every step against the textbook formula s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3
    for t in range(100, 200):
        assert cubic_sparsity(t, initial=0.1, **kw) == pytest.approx(
            0.8 + (0.1 - 0.8) * (1 - (t - 100) / 100) ** 3)
    # with dt = 10 the value only changes at t0 + k dt
    assert cubic_sparsity(117, every=10, **kw) == cubic_sparsity(110, **kw)
    with pytest.raises(ValueError, match="need end >= start"):
        cubic_sparsity(0, final=0.5, start=10, end=5)
    with pytest.raises(ValueError, match="final must be in"):
        cubic_sparsity(0, final=1.5, start=0, end=5)


def _model(seed=0):
    torch.manual_seed(seed)
    return rnnt(preset="tiny")


def test_gradual_pruner_follows_the_schedule_exactly():
    m = _model()
    pruner = GradualPruner(m, sparsity={"encoder.0": 0.9, "out": 0.5}, start=2, end=12, every=3)
    g = torch.Generator().manual_seed(1)
    previous = {k: torch.ones_like(v) for k, v in pruner.masks.items()}
    for step in range(1, 16):
        with torch.no_grad():                                   # what an optimizer step does
            for p in m.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)    # moves pruned ones too
        pruner.step(step)
        mats = m.matrices()
        for k, mask in pruner.masks.items():
            w = mats[k].weight
            n = w.numel()
            s = cubic_sparsity(step, final=pruner.targets[k], start=2, end=12, every=3)
            assert int((~mask).sum()) == math.floor(s * n + 0.5)   # exactly round(s n) pruned
            assert bool((w[~mask] == 0).all())                      # and zero after the step
            assert bool((mask <= previous[k]).all())                # masks only shrink
            previous[k] = mask.clone()
        # matrices not named are never pruned
        assert int((m.enc_proj.weight == 0).sum()) == 0
    assert sparsity_report(m)["layers"]["encoder.0"]["sparsity"] == pytest.approx(0.9, abs=1e-4)


def test_pruner_state_round_trip():
    m = _model()
    p1 = GradualPruner(m, sparsity=0.5, start=0, end=4)
    for s in range(1, 4):
        p1.step(s)
    p2 = GradualPruner(m, sparsity=0.5, start=0, end=4)
    p2.load_state_dict(p1.state_dict())
    for k in p1.masks:
        assert_equal(p1.masks[k].numpy(), p2.masks[k].numpy())
    assert p2.current == p1.current
    with pytest.raises(ValueError, match="no matrix 'embedding'"):
        GradualPruner(m, sparsity={"embedding": 0.5}, start=0, end=1)


def test_pruner_continues_from_initial_masks():
    """Fine-tuning a pruned model: each matrix's schedule starts at its masks' sparsity, the
    pruned weights stay pruned, and a target below the masks' sparsity is refused."""
    m = _model()
    first = GradualPruner(m, sparsity={"encoder.0": 0.5, "out": 0.8}, start=0, end=1)
    first.step(1)
    masks = {k: v.clone() for k, v in first.masks.items()}
    m2 = _model(seed=1)
    p = GradualPruner(m2, sparsity={"encoder.0": 0.7, "out": 0.8}, start=0, end=10, masks=masks)
    assert p.current["encoder.0"] == pytest.approx(0.5, abs=1e-3)
    assert p.sparsity_at(0) == pytest.approx({"encoder.0": p.current["encoder.0"],
                                              "out": p.current["out"]})
    assert p.sparsity_at(5)["encoder.0"] == pytest.approx(
        cubic_sparsity(5, final=0.7, start=0, end=10, initial=p.current["encoder.0"]))
    g = torch.Generator().manual_seed(2)
    for step in range(1, 12):
        with torch.no_grad():
            for q in m2.parameters():
                q.add_(torch.randn(q.shape, generator=g) * 0.1)
        p.step(step)
        for k, mask in p.masks.items():
            assert bool((mask <= masks[k]).all())             # pruned before: still pruned
            assert bool((m2.matrices()[k].weight[~mask] == 0).all())
    assert p.current == pytest.approx({"encoder.0": 0.7, "out": 0.8}, abs=1e-3)
    # the schedule's start survives a state round trip (a resumed run prunes the same way)
    p3 = GradualPruner(m2, sparsity={"encoder.0": 0.7, "out": 0.8}, start=0, end=10)
    p3.load_state_dict(p.state_dict())
    assert p3.initial == p.initial and p3.initial["encoder.0"] == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="already 80.0 % sparse.*at least 0.8"):
        GradualPruner(m2, sparsity={"out": 0.5}, start=0, end=10, masks=masks)
    with pytest.raises(ValueError, match="initial mask 'out' has shape"):
        GradualPruner(m2, sparsity={"out": 0.9}, start=0, end=10, masks={"out": masks["out"][:1]})


def test_magnitude_is_measured_in_the_integer_input_domain():
    m = _model()
    layer = m.encoder[0]
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 0.02        # a feature column: 0.02 * 3/32 = 0.0019 per code
        layer.weight[0, -1] = 0.2        # a recurrent column: 0.2 / 128 = 0.0016 per code
    mag = magnitude(layer)
    assert mag[0, 0] > mag[0, -1]
    pruned = prune_post_training(m, {"encoder.0": 1 - 1 / layer.weight.numel()})
    assert pruned.encoder[0].weight[0, 0] != 0 and pruned.encoder[0].weight[0, -1] == 0


def test_prune_post_training():
    m = _model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    p = prune_post_training(m, 0.8)
    for k, v in m.state_dict().items():
        assert_equal(v.numpy(), before[k].numpy())
    rep = sparsity_report(p)
    for k, layer in rep["layers"].items():
        assert layer["zeros"] == math.floor(0.8 * layer["weights"] + 0.5)
    # kept weights are unchanged, and they are the largest ones
    for k, layer in p.matrices().items():
        w0 = m.matrices()[k].weight
        kept = layer.weight != 0
        assert_equal(layer.weight[kept].detach().numpy(), w0[kept].detach().numpy())
        assert magnitude(m.matrices()[k])[~kept].max() <= magnitude(m.matrices()[k])[kept].min()
    assert_equal(p.embedding.weight.detach().numpy(), m.embedding.weight.detach().numpy())
    masks = masks_of(p)
    assert set(masks) == set(p.matrices())
    assert int((~masks["out"]).sum()) == rep["layers"]["out"]["zeros"]


def test_sparsity_report_counts_zero_codes():
    m = _model()
    m.set_quantization(w_bits=4)
    rep = sparsity_report(m)
    assert rep["sparsity"] == 0.0
    layer = m.matrices()["out"]
    w, _ = layer.effective_weight()
    q, _ = quantize_weight(w.detach().double() * layer.col_step.double(), 4)
    assert rep["layers"]["out"]["code_sparsity"] == pytest.approx(float((q == 0).double().mean()))
    assert rep["layers"]["out"]["code_sparsity"] > 0          # small weights round to zero


def _naive_bytes(q, bits, word=64, row_bytes=9):
    total = 0
    for row in q.tolist():
        for k in range(0, len(row), word):
            chunk = row[k:k + word]
            nnz = sum(1 for v in chunk if v != 0)
            total += word // 8 + (nnz * bits + 7) // 8
        total += row_bytes
    return total


@pytest.mark.parametrize("bits,sparsity", [(4, 0.0), (4, 0.8), (8, 0.5)])
def test_footprint_against_a_naive_count(bits, sparsity):
    m = prune_post_training(_model(), sparsity)
    fp = footprint(m, w_bits=bits)
    total = 0
    for k, layer in m.matrices().items():
        w, _ = layer.effective_weight()
        q, _ = quantize_weight(w.detach().double() * layer.col_step.double(), bits)
        nb = _naive_bytes(q, bits)
        assert fp["layers"][k]["bytes"] == nb
        assert fp["layers"][k]["nnz"] == int((q != 0).sum())
        total += nb
    total += m.embedding.weight.numel()
    assert fp["bytes"] == total
    assert fp["fp32_bytes"] == 4 * sum(p.numel() for p in m.parameters())
    assert fp["ratio"] == pytest.approx(total / fp["fp32_bytes"])


def test_footprint_by_hand():
    m = _model()
    with torch.no_grad():                   # encoder.1: 64 rows x 32 columns, no zero code
        m.encoder[1].weight.copy_(torch.ones(64, 32))
        m.encoder[1].weight[:, ::2] = -0.5
    fp = footprint(m, w_bits=4)["layers"]["encoder.1"]
    # one 64-weight word per row: 8 bitmap bytes + 32 codes * 4 bits = 16 bytes; + 9 per row
    assert fp["bytes"] == 64 * (8 + 16 + 9)
    assert fp["bits_per_weight"] == 8 * 24 / 32
    with torch.no_grad():
        m.encoder[1].weight[:, :24] = 0     # 8 nonzeros per row: 8 + 4 bytes
    fp = footprint(m, w_bits=8)["layers"]["encoder.1"]
    assert fp["bytes"] == 64 * (8 + 8 + 9) and fp["nnz"] == 64 * 8


def test_footprint_needs_a_width():
    with pytest.raises(ValueError, match="is not quantized; pass w_bits=4 or 8"):
        footprint(_model())
