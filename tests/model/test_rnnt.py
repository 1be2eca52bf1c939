"""Tests of model/rnnt.py against deliberately naive golden models."""

from __future__ import annotations

import pytest
import torch
from numpy.testing import assert_equal

from model.frontend import FEATURE_DIM, FEATURE_SCALE, FEATURE_ZERO_POINT
from model.qat import lut
from model.quant import quantize_weight
from model.rnnt import (C_STEP, JOINT_STEP, LATTICE_CHUNK, PRESETS, QLSTM, RNNT, _JoinTanh,
                         _LatticeJoint, _LSTMSeq,
                        count_parameters, rnnt)
from model.text import BLANK, VOCAB

SIG, TANH = lut("sigmoid"), lut("tanh")


def _features(n, t, *, seed):
    """Random on-grid feature values like model.frontend.features gives."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-128, 128, (n, t, FEATURE_DIM), generator=g)
    return (q + FEATURE_ZERO_POINT).to(torch.float32) * FEATURE_SCALE


# -- construction -------------------------------------------------------------------------------

def test_parameter_counts():
    default = rnnt(preset="default")
    assert count_parameters(default) == 1_979_997 <= 2_000_000
    assert count_parameters(rnnt(preset="tiny")) == 18_357
    # the count is exactly the sum of the documented shapes
    h, l, e, p, j = (PRESETS["default"][k] for k in ("enc_hidden", "enc_layers", "embed_dim",
                                                      "pred_hidden", "joint_dim"))
    f, v = FEATURE_DIM, len(VOCAB)
    expect = (4 * h * (f + h) + 4 * h) + (l - 1) * (4 * h * 2 * h + 4 * h) + (h * j + j) \
        + v * e + (4 * p * (e + p) + 4 * p) + (p * j + j) + (j * v + v)
    assert count_parameters(default) == expect


def test_factory_errors():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        rnnt(preset="huge")
    with pytest.raises(ValueError, match="enc_hidden must be a positive integer"):
        rnnt(preset="tiny", enc_hidden=0)
    with pytest.raises(TypeError):
        RNNT(16, 1, 8, 16, 16)                       # keyword only
    m = rnnt(preset="tiny")
    with pytest.raises(ValueError, match="w_bits must be None, 4 or 8, not 3"):
        m.set_quantization(w_bits=3)
    with pytest.raises(ValueError, match="no matrix 'joint'"):
        m.set_quantization(w_bits=4, overrides={"joint": 8})
    with pytest.raises(ValueError, match=r"feats must have shape \(N, T, 192\)"):
        m.transcribe(torch.zeros(1, 5, 10))


def test_set_quantization_per_layer():
    m = rnnt(preset="tiny")
    assert set(m.w_bits.values()) == {None} and not bool(m.act_quant)
    m.set_quantization(w_bits=4, overrides={"out": 8})
    assert m.w_bits == {"encoder.0": 4, "encoder.1": 4, "enc_proj": 4, "pred_lstm": 4,
                        "pred_proj": 4, "out": 8}
    assert bool(m.act_quant)
    m.set_quantization(w_bits=None)
    assert set(m.w_bits.values()) == {None} and not bool(m.act_quant)
    m.set_quantization(w_bits=None, activations=True)
    assert bool(m.act_quant)


# -- the LSTM layer against golden models ------------------------------------------------------

def _qlstm(i, h, *, seed, dtype=torch.float64):
    torch.manual_seed(seed)
    layer = QLSTM(i, h).to(dtype)
    with torch.no_grad():
        layer.weight.mul_(3.0)                      # exercise saturation of gates and cell
        layer.bias.normal_(0, 1)
    return layer


def test_float_lstm_equals_torch_lstm():
    I, H, N, T = 5, 7, 3, 9
    layer = _qlstm(I, H, seed=1)
    ref = torch.nn.LSTM(I, H, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(layer.weight[:, :I])
        ref.weight_hh_l0.copy_(layer.weight[:, I:])
        ref.bias_ih_l0.copy_(layer.bias)
        ref.bias_hh_l0.zero_()
    x = torch.randn(N, T, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    y, (hT, cT) = layer(x, (h0, c0))
    yr, (hr, cr) = ref(x, (h0[None], c0[None]))
    torch.testing.assert_close(y, yr)
    torch.testing.assert_close(hT, hr[0])
    torch.testing.assert_close(cT, cr[0])
    g = torch.randn_like(y)
    gh, gc = torch.randn_like(hT), torch.randn_like(cT)
    ours = torch.autograd.grad((y * g).sum() + (hT * gh).sum() + (cT * gc).sum(),
                               [x, h0, c0, layer.weight, layer.bias])
    theirs = torch.autograd.grad((yr * g).sum() + (hr[0] * gh).sum() + (cr[0] * gc).sum(),
                                 [x, h0, c0, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0])
    for a, b in zip(ours[:3], theirs[:3]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(ours[3], torch.cat([theirs[3], theirs[4]], 1))
    torch.testing.assert_close(ours[4], theirs[5])


def _ste_clamp(x, step, lo, hi):
    """Round half up and clamp; gradient 1 inside the range, 0 where it saturated."""
    code = torch.floor(x.detach() / step + 0.5)
    q = code.clamp(lo, hi) * step
    return torch.where((code >= lo) & (code <= hi), x + (q - x).detach(), q)


def _ste_lut(x, step, fn, table):
    xq = _ste_clamp(x, step, -128, 127)
    code = torch.round(xq.detach() / step).long()
    val = table[code + 128].to(x.dtype) / 128
    return fn(xq) + (val - fn(xq)).detach()


def _ste_round(x, step):
    return x + (torch.floor(x.detach() / step + 0.5) * step - x).detach()


def _naive_quant_lstm(xw, wh, h, c):
    """The quantized cell written out step by step with autograd and explicit STEs."""
    H = wh.shape[1]
    hs, cs = [], []
    for t in range(xw.shape[0]):
        a = xw[t] + h @ wh.T
        i = _ste_lut(a[:, :H], 1 / 16, torch.sigmoid, SIG)
        f = _ste_lut(a[:, H:2 * H], 1 / 16, torch.sigmoid, SIG)
        g = _ste_lut(a[:, 2 * H:3 * H], 1 / 32, torch.tanh, TANH)
        o = _ste_lut(a[:, 3 * H:], 1 / 16, torch.sigmoid, SIG)
        s = _ste_round(f * c, 2 ** -11) + _ste_round(i * g, 2 ** -11)
        c = _ste_clamp(s, 2 ** -11, -32768, 32767)
        tc = _ste_lut(c, 1 / 32, torch.tanh, TANH)
        h = _ste_round(o * tc, 1 / 128)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def test_quant_lstm_equals_naive_ste_cell():
    H, N, T = 6, 4, 12
    torch.manual_seed(3)
    xw = (torch.randn(T, N, 4 * H, dtype=torch.float64) * 4).requires_grad_()
    wh = (torch.randn(4 * H, H, dtype=torch.float64) * 2).requires_grad_()
    h0 = (torch.randint(-128, 128, (N, H)).double() / 128).requires_grad_()
    c0 = (torch.randint(-20000, 20000, (N, H)).double() * 2 ** -11).requires_grad_()
    hs, cs = _LSTMSeq.apply(xw, wh, h0, c0, True)
    hr, cr = _naive_quant_lstm(xw, wh, h0, c0)
    assert_equal(hs.detach().numpy(), hr.detach().numpy())
    assert_equal(cs.detach().numpy(), cr.detach().numpy())
    g1, g2 = torch.randn_like(hs), torch.randn_like(cs)
    ours = torch.autograd.grad((hs * g1).sum() + (cs * g2).sum(), [xw, wh, h0, c0])
    ref = torch.autograd.grad((hr * g1).sum() + (cr * g2).sum(), [xw, wh, h0, c0])
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    # the test saturates: some gate codes and some cell values hit their clamps
    assert (xw.detach().abs() > 8).any()


def test_quant_cell_is_the_integer_contract():
    """Given gate codes, the float32 cell computes the documented integers exactly."""
    H, N, T = 16, 8, 40
    g = torch.Generator().manual_seed(5)
    a = torch.randint(-128, 128, (T, N, 4 * H), generator=g)
    step = torch.full((4 * H,), 1 / 16)
    step[2 * H:3 * H] = 1 / 32
    c_int = torch.randint(-32768, 32768, (N, H), generator=g)
    hs, cs = _LSTMSeq.apply((a * step).float(), torch.zeros(4 * H, H), torch.zeros(N, H),
                            (c_int * C_STEP).float(), True)
    h_ref, c_ref = [], []
    c = c_int
    for t in range(T):
        i = SIG[a[t, :, :H] + 128]
        f = SIG[a[t, :, H:2 * H] + 128]
        gg = TANH[a[t, :, 2 * H:3 * H] + 128]
        o = SIG[a[t, :, 3 * H:] + 128]
        c = (((f * c + 64) >> 7) + ((i * gg + 4) >> 3)).clamp(-32768, 32767)
        tc = TANH[((c + 32) >> 6).clamp(-128, 127) + 128]
        h_ref.append(((o * tc + 64) >> 7).clamp(-128, 127))
        c_ref.append(c)
    assert_equal((hs.double() * 128).numpy(), torch.stack(h_ref).numpy())
    assert_equal((cs.double() * 2048).numpy(), torch.stack(c_ref).numpy())
    assert (torch.stack(c_ref).abs() > 4 * 2048).any()   # tanh(c)'s input saturates too


def test_join_tanh_is_the_lut():
    codes = torch.arange(-128, 128)
    for dtype in (torch.float32, torch.float64):
        y = _JoinTanh.apply((codes * JOINT_STEP).to(dtype))
        assert_equal((y.double() * 128).long().numpy(), TANH.numpy())
    # sums beyond the int8 range saturate like sat8 before the table
    y = _JoinTanh.apply(torch.tensor([-300.0, 300.0]) * JOINT_STEP)
    assert_equal((y * 128).long().numpy(), [TANH[0], TANH[255]])


@pytest.mark.parametrize("quant", [False, True])
@pytest.mark.parametrize("T", [1, LATTICE_CHUNK, 2 * LATTICE_CHUNK + 3])
def test_lattice_joint_equals_autograd_through_the_joint(quant, T):
    """The chunked lattice joint: the same logits as the broadcast activation + linear, and the
    gradients autograd gives through them (straight-through ``_JoinTanh`` when quantized)."""
    g = torch.Generator().manual_seed(T)
    N, U1, J, V = 3, 5, 7, 6
    enc = (torch.randn(N, T, J, generator=g, dtype=torch.float64) * 2).requires_grad_()
    pred = (torch.randn(N, U1, J, generator=g, dtype=torch.float64) * 2).requires_grad_()
    if quant:   # on the 1/32 grid, as the quantized model's enc and pred are
        enc = (enc.detach() / JOINT_STEP).round().mul(JOINT_STEP).requires_grad_()
        pred = (pred.detach() / JOINT_STEP).round().mul(JOINT_STEP).requires_grad_()
    w = torch.randn(V, J, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(V, generator=g, dtype=torch.float64).requires_grad_()
    grad = torch.randn(N, T, U1, V, generator=g, dtype=torch.float64)
    s = enc[:, :, None, :] + pred[:, None, :, :]
    ref = torch.nn.functional.linear(_JoinTanh.apply(s) if quant else torch.tanh(s), w, b)
    ref_grads = torch.autograd.grad(ref, (enc, pred, w, b), grad)
    out = _LatticeJoint.apply(enc, pred, w, b, quant)
    grads = torch.autograd.grad(out, (enc, pred, w, b), grad)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)
    if not quant:
        assert torch.autograd.gradcheck(lambda *x: _LatticeJoint.apply(*x, False),
                                        (enc, pred, w, b))


def test_training_lattice_is_the_joint_of_the_decoder():
    """``RNNT._lattice`` (chunked) gives the logits ``join`` gives the decoder, per node."""
    for w_bits in (None, 4):
        m = _model(w_bits)
        m.set_quantization(w_bits=w_bits, activations=w_bits is not None)
        feats = torch.randn(2, 9, FEATURE_DIM, dtype=torch.float64)
        targets = torch.randint(1, m.vocab_size, (2, 3))
        logits, enc = m._lattice(feats, torch.tensor([9, 6]), targets)
        tokens = torch.cat([torch.full((2, 1), m.blank), targets], 1)
        pred, _ = m.predict(tokens)
        torch.testing.assert_close(logits, m.join(enc[:, :, None], pred[:, None]),
                                   rtol=1e-12, atol=1e-12)


# -- the model ---------------------------------------------------------------------------------

def _model(w_bits=None, *, seed=0, **kw):
    torch.manual_seed(seed)
    m = rnnt(preset="tiny", **kw).double()
    m.set_feature_normalization(torch.full((FEATURE_DIM,), -4.0), torch.full((FEATURE_DIM,), 3.0))
    m.set_quantization(w_bits=w_bits)
    return m.eval()


@pytest.mark.parametrize("w_bits", [None, 4])
def test_streaming_chunks_equal_whole(w_bits):
    m = _model(w_bits)
    x = _features(2, 23, seed=1).double()
    with torch.no_grad():
        whole, _, st_whole = m.transcribe(x)
        a, _, st = m.transcribe(x[:, :9])
        b, _, st = m.transcribe(x[:, 9:17], state=st)
        c, _, st = m.transcribe(x[:, 17:], state=st)
    torch.testing.assert_close(torch.cat([a, b, c], 1), whole)
    torch.testing.assert_close(st[0], st_whole[0])
    torch.testing.assert_close(st[1], st_whole[1])


@pytest.mark.parametrize("w_bits", [None, 8])
def test_padded_batch_state_is_each_utterances_own(w_bits):
    m = _model(w_bits)
    x = _features(3, 15, seed=2).double()
    lengths = torch.tensor([15, 6, 0])
    with torch.no_grad():
        enc, _, (h, c) = m.transcribe(x, lengths)
        for n in range(3):
            e1, _, (h1, c1) = m.transcribe(x[n:n + 1, :int(lengths[n])])
            torch.testing.assert_close(enc[n, :int(lengths[n])], e1[0])
            torch.testing.assert_close(h[:, n], h1[:, 0])
            torch.testing.assert_close(c[:, n], c1[:, 0])
    assert (h[:, 2] == 0).all() and (c[:, 2] == 0).all()     # zero frames: the initial state


@pytest.mark.parametrize("w_bits", [None, 4])
def test_predict_step_by_step_equals_sequence(w_bits):
    m = _model(w_bits)
    tokens = torch.tensor([[BLANK, 5, 9, 1, 28], [BLANK, 3, 3, 3, 2]])
    with torch.no_grad():
        seq, (h, c) = m.predict(tokens)
        st = None
        for u in range(tokens.shape[1]):
            p, st = m.predict(tokens[:, u:u + 1], st)
            torch.testing.assert_close(p[:, 0], seq[:, u])
    torch.testing.assert_close(st[0], h)
    torch.testing.assert_close(st[1], c)


def test_forward_shapes_and_join_broadcast():
    m = _model()
    x = _features(2, 11, seed=3).double()
    targets = torch.tensor([[4, 5, 6], [7, 8, 0]])
    logits = m(x, torch.tensor([11, 8]), targets)
    assert logits.shape == (2, 11, 4, len(VOCAB))
    enc, _, _ = m.transcribe(x)
    pred, _ = m.predict(torch.cat([torch.zeros(2, 1, dtype=torch.long), targets], 1))
    torch.testing.assert_close(logits[1, 3, 2], m.join(enc[1, 3], pred[1, 2]))


def test_quantized_activations_lie_on_their_grids():
    m = _model(4)
    x = _features(2, 13, seed=4).double()
    with torch.no_grad():
        enc, _, (h, c) = m.transcribe(x)
        pred, _ = m.predict(torch.tensor([[0, 3, 4]]))
        logits = m.join(enc[0, :, None], pred[0, None])

    def on_grid(v, step, lo=-128, hi=127):
        codes = v / step
        assert_equal(codes.numpy(), torch.round(codes).numpy())
        assert codes.min() >= lo and codes.max() <= hi

    on_grid(enc, JOINT_STEP)
    on_grid(pred, JOINT_STEP)
    on_grid(h, 1 / 128)
    on_grid(c, C_STEP, -32768, 32767)
    on_grid(logits, m.logit_observer.step)


def test_weight_fake_quant_is_quantize_weight_in_the_input_domain():
    m = _model(4)
    for name, layer in m.matrices().items():
        w, b = layer.effective_weight()
        wq, bq = layer.weight_bias()
        col = layer.col_step.double()
        q, step = quantize_weight((w.detach() * col), 4)
        assert_equal((wq.detach() * col / step[:, None]).round().numpy(), q.numpy())
        torch.testing.assert_close(wq.detach() * col, q * step[:, None])
        torch.testing.assert_close(bq.detach(), torch.round(b.detach() / step) * step)
    # the first layer's feature columns use the feature step, the recurrent ones 1/128
    col = m.encoder[0].col_step
    assert (col[:FEATURE_DIM] == FEATURE_SCALE).all() and (col[FEATURE_DIM:] == 1 / 128).all()


def test_feature_normalization_is_folded_exactly():
    m = _model()
    layer = m.encoder[0]
    x = _features(1, 7, seed=5).double()
    y, _ = layer(x)
    plain = QLSTM(FEATURE_DIM, layer.hidden_size).double()
    with torch.no_grad():
        plain.weight.copy_(layer.weight)
        plain.bias.copy_(layer.bias)
    y_ref, _ = plain((x - layer.in_mean) / layer.in_std)
    torch.testing.assert_close(y, y_ref)
    with pytest.raises(ValueError, match="std must be positive"):
        m.set_feature_normalization(torch.zeros(FEATURE_DIM), torch.zeros(FEATURE_DIM))


def test_quant_spec_lists_every_matrix():
    m = _model(4, seed=1)
    m.set_quantization(w_bits=4, overrides={"out": 8})
    spec = m.quant_spec()
    assert list(spec["layers"]) == list(m.matrices())
    assert spec["layers"]["encoder.0"]["in_step"] == FEATURE_SCALE
    assert spec["layers"]["encoder.0"]["in_range"] == [-148, 107]
    assert spec["layers"]["out"]["w_bits"] == 8
    assert spec["layers"]["out"]["out_step"] == m.logit_observer.step
    assert spec["layers"]["pred_lstm"]["gate_steps"]["g"] == 1 / 32


def test_inference_weight_cache_follows_parameter_updates():
    m = _model(4)
    x = _features(1, 6, seed=6).double()
    with torch.no_grad():
        a, _, _ = m.transcribe(x)
        m.enc_proj.weight.mul_(2.0)                          # in place: version changes
        b, _, _ = m.transcribe(x)
        m.enc_proj.weight.data = m.enc_proj.weight.data * 0.5   # replaced storage
        c, _, _ = m.transcribe(x)
        m.set_quantization(w_bits=8)
        d, _, _ = m.transcribe(x)
    fresh = _model(8)
    with torch.no_grad():
        e, _, _ = fresh.transcribe(x)
    assert not torch.equal(a, b)
    torch.testing.assert_close(c, a)
    torch.testing.assert_close(d, e)
