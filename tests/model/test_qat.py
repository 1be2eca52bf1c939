"""Tests of model/qat.py: fake quantization, LUTs, observers, ACos, post-training quantization."""

from __future__ import annotations

import math

import pytest
import torch
from numpy.testing import assert_equal

from model.qat import (Observer, acos_lambda, acos_penalty, acos_regularizer, calibrate,
                       fake_quant, fake_quant_bias, fake_quant_weight, lut, lut_fake,
                       quantize_post_training)
from model.quant import quantize_weight
from model.rnnt import rnnt


def test_fake_quant_rounds_half_up_and_saturates():
    step = 0.25
    x = torch.tensor([-0.125, 0.125, 0.375, -0.375, 31.75, 31.9, 100.0, -32.0, -40.0])
    # by hand: codes floor(x/step + 1/2) = -0 (ties up), 1, 2, -1, 127, 127, clamp 127, -128, -128
    expect = torch.tensor([0, 1, 2, -1, 127, 127, 127, -128, -128]) * step
    assert_equal(fake_quant(x, step).numpy(), expect.numpy())
    # the integer requantizer's rounding: (p + 2**(s-1)) >> s
    p = torch.arange(-40, 41)
    assert_equal((fake_quant(p.double(), 8.0, -1000, 1000) / 8).long().numpy(),
                 ((p + 4) >> 3).numpy())


def test_fake_quant_straight_through_gradient_is_clipped():
    x = torch.tensor([0.3, -5.0, 5.0, 3.9, -4.0], requires_grad=True)
    y = fake_quant(x, 1 / 32)                      # range [-4, 127/32]
    y.sum().backward()
    assert_equal(x.grad.numpy(), [1.0, 0.0, 0.0, 1.0, 1.0])


def test_fake_quant_weight_is_quantize_weight():
    torch.manual_seed(0)
    w = torch.randn(6, 10, requires_grad=True)
    for bits in (4, 8):
        wq, step = fake_quant_weight(w, bits)
        q, s = quantize_weight(w, bits)
        assert_equal(step.numpy(), s.numpy())
        torch.testing.assert_close(wq.double(), (q * s[:, None]).float().double())
        (wq * torch.arange(60.).reshape(6, 10)).sum().backward()
        assert_equal(w.grad.numpy(), torch.arange(60.).reshape(6, 10).numpy())   # STE
        w.grad = None
    col = torch.tensor([1 / 128] * 5 + [3 / 32] * 5)
    wq, step = fake_quant_weight(w, 4, col)
    q, s = quantize_weight(w.detach().double() * col.double(), 4)
    assert_equal(step.numpy(), s.numpy())
    assert_equal(torch.round(wq.detach().double() * col.double() / s[:, None]).numpy(), q.numpy())


def test_fake_quant_bias_rounds_to_accumulator_units():
    b = torch.tensor([0.26, -0.74, 3.0], requires_grad=True)
    step = torch.tensor([0.5, 0.5, 0.25], dtype=torch.float64)
    y = fake_quant_bias(b, step)
    assert_equal(y.detach().numpy(), [0.5, -0.5, 3.0])
    y.sum().backward()
    assert_equal(b.grad.numpy(), [1.0, 1.0, 1.0])


def test_luts_by_hand():
    sig, tanh = lut("sigmoid"), lut("tanh")
    assert sig.shape == tanh.shape == (256,)
    assert sig[128] == 64 and tanh[128] == 0                   # input 0
    assert sig[0] == 0 and sig[255] == 127                     # sigmoid(-8) = 0.0003, (7.94) clamps
    assert tanh[0] == -128 and tanh[255] == 127                # tanh(-4) = -0.9993 -> -128
    # a middle entry by hand: sigmoid(1) = 0.731 -> 93.58 -> 94; tanh(0.5) = 0.4621 -> 59.15 -> 59
    assert sig[128 + 16] == 94 and tanh[128 + 16] == 59
    assert bool((sig[1:] >= sig[:-1]).all()) and bool((tanh[1:] >= tanh[:-1]).all())
    with pytest.raises(ValueError, match="kind must be 'sigmoid' or 'tanh'"):
        lut("relu")


def test_lut_fake_forward_and_gradient():
    x = torch.tensor([1.0, 0.03, -9.0, 9.0], dtype=torch.float64, requires_grad=True)
    y = lut_fake(x, "sigmoid")
    sig = lut("sigmoid")
    # 0.03 * 16 = 0.48 -> code 0; -9 -> saturates at -128; 9 -> 127
    assert_equal((y.detach() * 128).long().numpy(), [sig[144], sig[128], sig[0], sig[255]])
    y.sum().backward()
    s1 = torch.sigmoid(torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor([float(s1 * (1 - s1)), 0.25, 0.0, 0.0],
                                                    dtype=torch.float64))


def test_observer_ema_and_freezing():
    obs = Observer(momentum=0.5)
    obs.observe(torch.tensor([1.0, -4.0]))
    assert float(obs.maxabs) == 4.0                  # first observation initializes
    obs.observe(torch.tensor([2.0]))
    assert float(obs.maxabs) == 3.0
    assert obs.step == pytest.approx(3.0 / 127)
    obs.eval()
    obs.observe(torch.tensor([100.0]))
    assert float(obs.maxabs) == 3.0                  # evaluation does not observe
    obs.train()
    obs.freeze()
    obs.observe(torch.tensor([100.0]))
    assert float(obs.maxabs) == 3.0 and int(obs.count) == 2
    with pytest.raises(ValueError, match="momentum"):
        Observer(momentum=0)


def test_acos_penalty_values():
    # a row whose max is 7 steps (4-bit grid step 0.1): levels give 0
    w = torch.tensor([[0.7, 0.3, -0.2, 0.0]], dtype=torch.float64)
    assert float(acos_penalty(w, 4)) == pytest.approx(0.0, abs=1e-12)
    # halfway between levels: 1; a quarter: 1 - cos(pi/4)
    w = torch.tensor([[0.7, 0.05, 0.025]], dtype=torch.float64)
    expect = (0 + 1 + (1 - math.cos(math.pi / 4))) / 3
    assert float(acos_penalty(w, 4)) == pytest.approx(expect)
    # uniform fractional parts: 1 - 2/pi on average
    g = torch.Generator().manual_seed(0)
    w = torch.cat([torch.tensor([[0.7]]), torch.rand(1, 20000, generator=g) * 0.6], 1).double()
    assert float(acos_penalty(w, 4)) == pytest.approx(1 - 2 / math.pi, abs=0.01)


def test_acos_gradient_pulls_towards_nearest_level():
    w = torch.tensor([[0.7, 0.13, 0.17, -0.32, -0.28]], dtype=torch.float64, requires_grad=True)
    acos_penalty(w, 4).backward()
    # gradient descent moves 0.13 down to 0.1, 0.17 up to 0.2, -0.32 up to -0.3, -0.28 down
    assert w.grad[0, 1] > 0 and w.grad[0, 2] < 0 and w.grad[0, 3] < 0 and w.grad[0, 4] > 0
    assert float(w.grad[0, 0]) == pytest.approx(0.0, abs=1e-12)


def test_acos_regularizer_sums_quantized_matrices():
    torch.manual_seed(0)
    m = rnnt(preset="tiny")
    assert float(acos_regularizer(m)) == 0.0                    # float model: nothing to pull
    m.set_quantization(w_bits=4, overrides={"out": None})
    r = acos_regularizer(m)
    expect = sum(float(acos_penalty((l.effective_weight()[0] * l.col_step).detach(), 4))
                 for n, l in m.matrices().items() if n != "out")
    assert float(r.detach()) == pytest.approx(expect)
    r.backward()
    assert m.out.weight.grad is None and m.encoder[0].weight.grad is not None
    # 8-bit matrices count 7/127 of their penalty: one lambda for both widths
    m.set_quantization(w_bits=8, overrides={n: None for n in m.matrices() if n != "out"})
    w = (m.out.effective_weight()[0] * m.out.col_step).detach()
    assert float(acos_regularizer(m).detach()) == pytest.approx(7 / 127 * float(acos_penalty(w, 8)))


def test_acos_lambda_schedule():
    assert acos_lambda(9, start=10, ramp=20, lam=2.0) == 0.0
    assert acos_lambda(10, start=10, ramp=20, lam=2.0) == 0.0
    assert acos_lambda(20, start=10, ramp=20, lam=2.0) == 1.0
    assert acos_lambda(30, start=10, ramp=20, lam=2.0) == 2.0
    assert acos_lambda(1000, start=10, ramp=20, lam=2.0) == 2.0
    assert acos_lambda(10, start=10, ramp=0, lam=2.0) == 2.0


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = (torch.randint(-128, 128, (2, 9, 192), generator=g) - 20) * (3 / 32)
    return feats.float(), torch.tensor([9, 7]), torch.tensor([[3, 4], [5, 0]]), torch.tensor([2, 1])


def test_quantize_post_training_copies_and_quantizes():
    torch.manual_seed(0)
    m = rnnt(preset="tiny")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    q = quantize_post_training(m, 4, calibration=[_batch(0), _batch(1)])
    for k, v in m.state_dict().items():                        # the original is untouched
        assert_equal(v.numpy(), before[k].numpy())
    assert set(q.w_bits.values()) == {4} and bool(q.act_quant) and not q.training
    assert bool(q.logit_observer.frozen) and int(q.logit_observer.count) == 2
    assert float(q.logit_observer.maxabs) != float(m.logit_observer.maxabs)
    with pytest.raises(ValueError, match="w_bits must be 4 or 8"):
        quantize_post_training(m, 2)


def test_calibrate_sets_and_freezes_observers():
    torch.manual_seed(0)
    m = rnnt(preset="tiny")
    calibrate(m, [_batch(2)])
    with torch.no_grad():
        logits = m(*_batch(2))
    assert float(m.logit_observer.maxabs) == pytest.approx(float(logits.abs().max()), rel=1e-6)
    m.train()
    m(*_batch(3))
    assert int(m.logit_observer.count) == 1                     # frozen
