"""Tests of model/quant.py: the integer reference arithmetic against naive scalar models."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_equal

from model.quant import (INPUT_SCALE, QuantLinear, int_matvec, int_matvec_acc, prune_magnitude,
                         quantize_linear, quantize_multiplier, quantize_weight, random_input,
                         random_layer, requantize, wrap)

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# -- naive scalar golden models --------------------------------------------------------------

def wrap_ref(v: int, bits: int) -> int:
    v %= 1 << bits
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def requantize_ref(acc: int, bias: int, mult: int, shift: int, acc_bits=32, out_bits=8) -> int:
    """rtl/memfmt.py's docstring, transcribed with Python integers."""
    t = wrap_ref(acc + bias, acc_bits)
    p = t * mult
    y = (p + (1 << (shift - 1))) >> shift if shift > 0 else p
    return max(-(1 << (out_bits - 1)), min((1 << (out_bits - 1)) - 1, y))


def matvec_ref(W, bias, mult, shift, x, acc_bits=32, act_bits=8):
    out = []
    for r in range(len(W)):
        acc = 0
        for c in range(len(x)):
            acc += int(W[r][c]) * int(x[c])
        out.append(requantize_ref(acc, int(bias[r]), int(mult[r]), int(shift[r]), acc_bits,
                                  act_bits))
    return out


# -- wrap / requantize -----------------------------------------------------------------------

def test_wrap():
    assert_equal(wrap([INT32_MAX + 1, -(1 << 31) - 1, 5, -5], 32).tolist(),
                 [INT32_MIN, INT32_MAX, 5, -5])
    assert_equal(wrap([127, 128, -129, 255, 256], 8).tolist(), [127, -128, 127, -1, 0])


acc_values = st.one_of(st.integers(-(1 << 40), 1 << 40),
                       st.sampled_from([0, 1, -1, INT32_MAX, INT32_MIN, INT32_MAX + 1,
                                        INT32_MIN - 1, 1 << 40, -(1 << 40)]))
bias_values = st.one_of(st.integers(INT32_MIN, INT32_MAX), st.sampled_from([0, INT32_MIN, INT32_MAX]))
mult_values = st.one_of(st.integers(0, INT32_MAX),
                        st.sampled_from([0, 1, 1 << 30, INT32_MAX]))
shift_values = st.one_of(st.integers(0, 63), st.sampled_from([0, 1, 31, 62, 63]))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(acc_values, bias_values, mult_values, shift_values),
                     min_size=1, max_size=16),
       acc_bits=st.sampled_from([16, 24, 32]), out_bits=st.sampled_from([8, 16]))
def test_requantize_matches_scalar_reference(rows, acc_bits, out_bits):
    acc, bias, mult, shift = (list(col) for col in zip(*rows))
    got = requantize(torch.tensor(acc), torch.tensor(bias), torch.tensor(mult),
                     torch.tensor(shift), acc_bits=acc_bits, out_bits=out_bits)
    want = [requantize_ref(*r, acc_bits=acc_bits, out_bits=out_bits) for r in rows]
    assert_equal(got.tolist(), want)


def test_requantize_rounds_half_up():
    # shift 1: p/2 with ties towards +inf
    p = torch.tensor([-5, -3, -1, 1, 3, 5, -4, 4])
    got = requantize(p, torch.zeros(8, dtype=torch.int64), torch.ones(8, dtype=torch.int64),
                     torch.ones(8, dtype=torch.int64))
    assert_equal(got.tolist(), [-2, -1, 0, 1, 2, 3, -2, 2])
    # shift 2: x.25 down, x.5 up, x.75 up (also negative)
    p = torch.tensor([5, 6, 7, -5, -6, -7])
    got = requantize(p, 0, 1, 2)
    assert_equal(got.tolist(), [1, 2, 2, -1, -1, -2])


def test_requantize_shift_zero_and_per_row_shift():
    acc = torch.tensor([[3, 3, 3], [-3, -3, -3]])
    got = requantize(acc, torch.tensor([0, 0, 0]), torch.tensor([5, 5, 5]),
                     torch.tensor([0, 1, 2]))
    assert_equal(got.tolist(), [[15, 8, 4], [-15, -7, -4]])


def test_requantize_saturates_both_ways():
    got = requantize(torch.tensor([1000, -1000, 127, -128, 128, -129]), 0, 1, 0)
    assert_equal(got.tolist(), [127, -128, 127, -128, 127, -128])
    # huge product with the largest shift
    got = requantize(torch.tensor([INT32_MAX, INT32_MIN]), 0, INT32_MAX, 63)
    assert_equal(got.tolist(), [requantize_ref(INT32_MAX, 0, INT32_MAX, 63),
                                requantize_ref(INT32_MIN, 0, INT32_MAX, 63)])


def test_requantize_accumulator_wraps():
    # acc + bias overflows int32: wraps to the most negative value, saturating low
    assert requantize(torch.tensor([INT32_MAX]), 1, 1, 0).item() == -128
    assert requantize(torch.tensor([INT32_MIN]), -1, 1, 0).item() == 127
    # raw sums outside acc_bits are wrapped first
    assert requantize(torch.tensor([(1 << 32) + 7]), 0, 1, 0).item() == 7
    assert requantize(torch.tensor([(1 << 16) + 3]), 0, 1, 0, acc_bits=16).item() == 3


def test_requantize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mult.*outside"):
        requantize(torch.tensor([1]), 0, 1 << 31, 0)
    with pytest.raises(ValueError, match="mult.*outside"):
        requantize(torch.tensor([1]), 0, -1, 0)
    with pytest.raises(ValueError, match="shift.*outside"):
        requantize(torch.tensor([1]), 0, 1, 64)
    with pytest.raises(ValueError, match="bias.*int32"):
        requantize(torch.tensor([1]), 1 << 31, 1, 0)
    with pytest.raises(ValueError, match="acc_bits"):
        requantize(torch.tensor([1]), 0, 1, 0, acc_bits=33)
    with pytest.raises(ValueError, match="integers"):
        requantize(torch.tensor([1.0]), 0, 1, 0)


# -- quantize_multiplier ---------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0 ** -33, max_value=2.0 ** 31, exclude_max=True))
def test_quantize_multiplier_normalized_and_accurate(real):
    mult, shift = quantize_multiplier(real)
    assert 1 << 30 <= mult < 1 << 31
    assert 0 <= shift <= 63
    assert abs(mult * 2.0 ** -shift - real) <= real * 2.0 ** -31


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 30)
    assert quantize_multiplier(0.5) == (1 << 30, 31)
    # rounds up to 2**31 -> renormalized
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 30)
    # clipped: too large saturates, too small loses precision then vanishes
    assert quantize_multiplier(2.0 ** 40) == ((1 << 31) - 1, 0)
    m, s = quantize_multiplier(2.0 ** -40)
    assert (m, s) == (1 << 23, 63)
    assert quantize_multiplier(2.0 ** -70) == (0, 63)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="scale"):
            quantize_multiplier(bad)


# -- pruning and weight quantization ---------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.8, 0.95, 1.0])
def test_prune_exact_count(sparsity):
    w = torch.randn(37, 53, generator=torch.Generator().manual_seed(0))
    mask = prune_magnitude(w, sparsity)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    n_zero = math.floor(sparsity * w.numel() + 0.5)
    assert int((~mask).sum()) == n_zero
    if 0 < n_zero < w.numel():
        assert w[mask].abs().min() >= w[~mask].abs().max()


def test_prune_ties_are_deterministic():
    w = torch.ones(4, 4)
    mask = prune_magnitude(w, 0.75)
    assert_equal(mask.flatten().tolist(), [True] * 4 + [False] * 12)
    with pytest.raises(ValueError, match="sparsity"):
        prune_magnitude(w, 1.5)


@pytest.mark.parametrize("w_bits", [4, 8])
def test_quantize_weight(w_bits):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(10, 30, generator=g, dtype=torch.float64)
    w[3] = 0
    q, scale = quantize_weight(w, w_bits)
    qmax = (1 << (w_bits - 1)) - 1
    assert q.dtype == torch.int64
    assert int(q.abs().max()) == qmax
    assert scale[3].item() == 1.0 and not q[3].any()
    err = (q * scale[:, None] - w).abs()
    assert bool((err <= scale[:, None] / 2 + 1e-12).all())
    with pytest.raises(ValueError, match="w_bits must be 4 or 8"):
        quantize_weight(w, 6)


# -- QuantLinear ------------------------------------------------------------------------------

def _layer(W, w_bits, bias=None, mult=None, shift=None):
    W = torch.tensor(W, dtype=torch.int64)
    R = W.shape[0]
    return QuantLinear(W, torch.zeros(R, dtype=torch.int64) if bias is None else bias,
                       torch.full((R,), 1 << 30) if mult is None else mult,
                       torch.full((R,), 33) if shift is None else shift, w_bits)


def test_quantlinear_properties_and_validation():
    layer = _layer([[0, 1, -8], [7, 0, 0]], 4)
    assert (layer.rows, layer.cols, layer.nnz) == (2, 3, 3)
    assert layer.sparsity == 0.5
    with pytest.raises(ValueError, match=r"weight\[0, 2\] = -9 is outside signed 4-bit"):
        _layer([[0, 1, -9]], 4)
    with pytest.raises(ValueError, match="bias must have shape"):
        _layer([[1]], 4, bias=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="mult.*outside"):
        _layer([[1]], 4, mult=torch.tensor([-1]))
    with pytest.raises(ValueError, match="shift.*outside"):
        _layer([[1]], 4, shift=torch.tensor([64]))
    with pytest.raises(ValueError, match="w_bits"):
        _layer([[1]], 5)
    with pytest.raises(ValueError, match="integers"):
        QuantLinear(torch.ones(1, 1), torch.zeros(1), torch.zeros(1), torch.zeros(1), 8)


# -- the integer matvec -----------------------------------------------------------------------

@pytest.mark.parametrize("w_bits", [4, 8])
def test_int_matvec_exact_extremes(w_bits):
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    W = [[lo, hi, 0, lo, 1, -1, lo],
         [hi, hi, hi, hi, hi, hi, hi],
         [0, 0, 0, 0, 0, 0, 0],
         [lo, 0, lo, 0, lo, 0, lo]]
    bias = torch.tensor([0, -100, 5, 1000])
    mult = torch.tensor([1 << 30, 1 << 30, INT32_MAX, 1234567])
    shift = torch.tensor([31, 40, 0, 20])
    layer = _layer(W, w_bits, bias, mult, shift)
    for x in ([-128, -128, -128, -128, -128, -128, -128],
              [127, -128, 0, -128, 5, -7, 127],
              [0, 0, 0, 0, 0, 0, 0]):
        got = int_matvec(layer, torch.tensor(x))
        assert_equal(got.tolist(), matvec_ref(W, bias, mult, shift, x))


def test_int_matvec_random_vs_loop_and_batch():
    layer = random_layer(9, 21, sparsity=0.4, w_bits=8, seed=3)
    xs = torch.stack([random_input(21, seed=s, zero_fraction=0.3) for s in range(4)])
    xs[0, :3] = -128
    got = int_matvec(layer, xs)
    assert got.shape == (4, 9)
    for n in range(4):
        want = matvec_ref(layer.weight.tolist(), layer.bias, layer.mult, layer.shift,
                          xs[n].tolist())
        assert_equal(got[n].tolist(), want)
        assert_equal(int_matvec(layer, xs[n]).tolist(), want)


def test_int_matvec_accumulator_wraps():
    W = [[-128] * 8]
    layer = _layer(W, 8, mult=torch.tensor([1]), shift=torch.tensor([0]))
    x = torch.full((8,), -128)
    assert int_matvec_acc(layer, x).item() == 8 * 16384
    assert int_matvec_acc(layer, x, 16).item() == wrap_ref(8 * 16384, 16)
    assert_equal(int_matvec(layer, x, acc_bits=16).tolist(),
                 matvec_ref(W, [0], [1], [0], x.tolist(), acc_bits=16))


def test_int_matvec_rejects_bad_inputs():
    layer = _layer([[1, 2]], 4)
    with pytest.raises(ValueError, match=r"x\[1\] = 128 is outside signed 8-bit"):
        int_matvec(layer, torch.tensor([0, 128]))
    with pytest.raises(ValueError, match="shape"):
        int_matvec(layer, torch.tensor([0, 1, 2]))


# -- layer construction -------------------------------------------------------------------------

def test_quantize_linear_tracks_float_layer():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)
    layer = quantize_linear(lin, w_bits=8, in_scale=INPUT_SCALE, out_scale=0.02, sparsity=0.5)
    assert layer.sparsity >= 0.5
    x = random_input(64, seed=1)
    y_q = int_matvec(layer, x).to(torch.float64) * 0.02
    W = lin.weight.detach().double() * prune_magnitude(lin.weight, 0.5)
    y = W @ (x.double() * INPUT_SCALE) + lin.bias.detach().double()
    y = y.clamp(-128 * 0.02, 127 * 0.02)
    # float path: bounded by weight quantization error + rounding, not bit-exact by nature
    assert float((y_q - y).abs().max()) < 0.1


def test_random_layer_is_deterministic_and_uses_the_range():
    state = torch.get_rng_state()
    a = random_layer(64, 96, sparsity=0.7, w_bits=4, seed=5)
    assert torch.equal(torch.get_rng_state(), state), "global RNG must be left untouched"
    b = random_layer(64, 96, sparsity=0.7, w_bits=4, seed=5)
    c = random_layer(64, 96, sparsity=0.7, w_bits=4, seed=6)
    for f in ("weight", "bias", "mult", "shift"):
        assert_equal(getattr(a, f).numpy(), getattr(b, f).numpy())
    assert not torch.equal(a.weight, c.weight)
    assert a.sparsity >= 0.7 and a.w_bits == 4
    assert int(a.weight.min()) >= -7 and int(a.weight.max()) <= 7
    ys = torch.cat([int_matvec(a, random_input(96, seed=s)) for s in range(8)])
    saturated = float((ys.abs() >= 127).double().mean())
    assert saturated < 0.01
    assert float(ys.double().std()) > 10, "outputs should use a good part of the int8 range"


@pytest.mark.parametrize("frac", [0.0, 0.25, 0.5, 1.0])
def test_random_input(frac):
    x = random_input(100, seed=0, zero_fraction=frac)
    assert x.dtype == torch.int64 and x.shape == (100,)
    assert int((x == 0).sum()) == round(frac * 100)
    assert int(x.min()) >= -128 and int(x.max()) <= 127
    assert_equal(x.numpy(), random_input(100, seed=0, zero_fraction=frac).numpy())
    big = random_input(4096, seed=1)
    assert int(big.min()) == -128 and int(big.max()) == 127


def test_int_matvec_uses_numpy_inputs_too():
    layer = _layer([[1, -1]], 4, mult=torch.tensor([1]), shift=torch.tensor([0]))
    assert_equal(int_matvec(layer, np.array([5, 3])).tolist(), [2])
