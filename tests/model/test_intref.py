"""Tests of model/intref.py: the integer RNN-T against naive golden arithmetic, against the
fake-quantized model (agreement up to ties), streaming, decoding and ``transcribe --int``."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from numpy.testing import assert_equal

from model.audio import write_wav
from model.checkpoint import load, save
from model.decode import beam_search, greedy_batch
from model.frontend import FEATURE_DIM, FEATURE_ZERO_POINT, dequantize_features
from model.intref import (SIGMOID_LUT, TANH_LUT, IntRefError, IntRNNT, compare, lstm_cell,
                          lut_lookup, requant, rshr, wer_int_vs_fakequant)
from model.prune import prune_post_training
from model.qat import lut, quantize_post_training
from model.quant import QuantLinear, int_matvec, quantize_multiplier, requantize
from model.rnnt import rnnt
from model.text import BLANK
from model.train import TrainConfig, UtteranceSet, collate, fit


def _model(w_bits=4, *, seed=0, dtype=torch.float32, sparsity=0.0, scale=1.0):
    """A random tiny model, fake-quantized; ``scale`` enlarges the weights (saturation)."""
    torch.manual_seed(seed)
    m = rnnt(preset="tiny")
    with torch.no_grad():
        for layer in m.matrices().values():
            layer.weight.mul_(scale)
        m.out.weight.mul_(3.0)                     # larger logits: some non-blank choices
        m.out.bias[BLANK] -= 2.0
    m.set_feature_normalization(torch.full((FEATURE_DIM,), -4.0), torch.full((FEATURE_DIM,), 3.0))
    if sparsity:
        m = prune_post_training(m, sparsity)
    m.set_quantization(w_bits=w_bits)
    m.logit_observer.maxabs.fill_(6.0)
    return m.to(dtype).eval()


def _codes(t, seed, n=None):
    g = torch.Generator().manual_seed(seed)
    shape = (t, FEATURE_DIM) if n is None else (n, t, FEATURE_DIM)
    return torch.randint(-128, 128, shape, generator=g).to(torch.int8)


# -- the primitive operations against Python integers and fractions ----------------------------

def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def test_rshr_rounds_half_up_also_below_zero():
    x = torch.tensor([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5])
    assert_equal(rshr(x, 1).numpy(), [-2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3])
    for s in (1, 3, 6, 7):
        v = torch.arange(-700, 700)
        assert_equal(rshr(v, s).numpy(), [_round_half_up(Fraction(int(a), 1 << s)) for a in v])


def test_requant_is_quant_requantize():
    g = torch.Generator().manual_seed(0)
    acc = torch.randint(-(1 << 24), 1 << 24, (64, 40), generator=g)
    bias = torch.randint(-(1 << 20), 1 << 20, (40,), generator=g)
    mult = torch.randint(1 << 30, 1 << 31, (40,), generator=g)
    shift = torch.randint(0, 45, (40,), generator=g)
    shift[:3] = torch.tensor([0, 1, 63])
    assert_equal(requant(acc, bias, mult, shift).numpy(),
                 requantize(acc, bias, mult, shift).numpy())
    # exact ties below zero round up: -2.5 -> -2, -1.5 -> -1, -0.5 -> 0 (mult 2**30, shift 31)
    t = torch.tensor([-5, -3, -1, 1, 3, 5])
    m, s = torch.tensor([1 << 30]), torch.tensor([31])
    assert_equal(requant(t, 0, m, s).numpy(), [-2, -1, 0, 1, 2, 3])
    assert_equal(requantize(t, 0, m, s).numpy(), [-2, -1, 0, 1, 2, 3])


def test_luts_are_the_qat_tables():
    assert SIGMOID_LUT.dtype == TANH_LUT.dtype == torch.int8
    assert_equal(SIGMOID_LUT.long().numpy(), lut("sigmoid").numpy())
    assert_equal(TANH_LUT.long().numpy(), lut("tanh").numpy())
    a = torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8)
    assert_equal(lut_lookup(TANH_LUT, a).numpy(), [-128, -4, 0, 4, 127])   # tanh(1/32)*128=4.0
    assert_equal(lut_lookup(SIGMOID_LUT, a).numpy(), [0, 62, 64, 66, 127])


def _naive_cell(i, f, g, o, c):
    """The cell in Python fractions: round half up of the real products, then saturate."""
    sat = lambda v, b: max(-(1 << (b - 1)), min((1 << (b - 1)) - 1, v))
    cf = _round_half_up(Fraction(f * c, 128)) + _round_half_up(Fraction(i * g, 8))
    cn = sat(cf, 16)
    tc = int(TANH_LUT[sat(_round_half_up(Fraction(cn, 64)), 8) + 128])
    return cn, tc, sat(_round_half_up(Fraction(o * tc, 128)), 8)


def test_lstm_cell_edges_and_random_against_fractions():
    cases = [
        (127, 127, 127, 127, 32767),      # saturates at +32767: 32511 + 2016
        (127, 127, -128, 127, -32768),    # saturates at -32768: -32512 - 2032
        (0, 0, 0, 127, 0),
        (1, 64, -4, 1, -1),               # i*g = -4 -> -0.5 -> 0 (half up); f*c = -64 -> 0
        (1, 64, -12, 3, -3),              # i*g = -12 -> -1.5 -> -1; f*c = -192 -> -1.5 -> -1
        (0, 127, 0, 127, -32),            # c = -32 + ... tanh input (c + 32) >> 6 ties up
        (0, 127, 0, 1, -96),
        (0, 128 - 1, 0, 1, 64 * 130),     # tanh input beyond int8 saturates at 127
    ]
    g = torch.Generator().manual_seed(1)
    n = 3000
    rand = zip(torch.randint(0, 128, (n,), generator=g).tolist(),
               torch.randint(0, 128, (n,), generator=g).tolist(),
               torch.randint(-128, 128, (n,), generator=g).tolist(),
               torch.randint(0, 128, (n,), generator=g).tolist(),
               torch.randint(-32768, 32768, (n,), generator=g).tolist())
    cases += list(rand)
    i, f, gg, o, c = (torch.tensor(v) for v in zip(*cases))
    cn, tc, h = lstm_cell(i, f, gg, o, c)
    ref = [_naive_cell(*x) for x in cases]
    assert_equal(cn.numpy(), [r[0] for r in ref])
    assert_equal(tc.numpy(), [r[1] for r in ref])
    assert_equal(h.numpy(), [r[2] for r in ref])
    assert int(cn[0]) == 32767 and int(cn[1]) == -32768
    assert int(cn[3]) == 0 and int(cn[4]) == -2


# -- extraction --------------------------------------------------------------------------------

def test_float_model_is_refused_with_a_clear_error():
    m = rnnt(preset="tiny")
    with pytest.raises(IntRefError, match=r"not quantized \(float weights in encoder.0, "
                                          r"encoder.1, .*activation quantization off"):
        IntRNNT.from_model(m)
    m.set_quantization(w_bits=4, overrides={"out": None})
    with pytest.raises(IntRefError, match=r"not quantized \(float weights in out\)"):
        IntRNNT.from_model(m)
    m.set_quantization(w_bits=8, activations=False)
    with pytest.raises(IntRefError, match=r"activation quantization off"):
        IntRNNT.from_model(m)
    with pytest.raises(IntRefError, match="expected an RNNT"):
        IntRNNT.from_model(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("w_bits", [4, 8])
def test_extracted_matrices_are_the_fake_quant_weights(w_bits):
    m = _model(w_bits, dtype=torch.float64, sparsity=0.5)
    im = IntRNNT.from_model(m)
    assert list(im.matrices) == list(m.matrices())
    for name, layer in m.matrices().items():
        q = im.matrices[name]
        assert isinstance(q, QuantLinear) and q.w_bits == w_bits
        w_fq, b_fq = layer.weight_bias()
        col = layer.col_step.double()
        # the codes times their steps are the weights the float model computes with
        torch.testing.assert_close(q.weight * q.w_scale[:, None] / col, w_fq.detach(),
                                   rtol=1e-15, atol=0)
        bias = q.bias
        if name == "encoder.0":                     # the feature zero point is folded in
            bias = bias - FEATURE_ZERO_POINT * q.weight[:, :FEATURE_DIM].sum(1)
        torch.testing.assert_close(bias * q.w_scale, b_fq.detach(), rtol=1e-15, atol=0)
        # pruned weights stay zero codes
        assert bool((q.weight[layer.weight.detach() == 0] == 0).all())
        for r in range(q.rows):
            assert (int(q.mult[r]), int(q.shift[r])) == quantize_multiplier(
                float(q.w_scale[r]) / float(im.out_step[name][r]))
    assert im.out_step["encoder.0"][0] == 1 / 16 and im.out_step["encoder.0"][32] == 1 / 32
    assert im.matrices["out"].out_scale == m.logit_observer.step == im.logit_step
    emb = m.embedding.weight.detach()
    assert_equal(im.embedding.long().numpy(),
                 torch.floor(emb * 128 + 0.5).clamp(-128, 127).long().numpy())


def test_accumulator_overflow_is_refused():
    im = IntRNNT.from_model(_model(8))
    mats = dict(im.matrices)
    q = mats["enc_proj"]
    mats["enc_proj"] = QuantLinear(q.weight, q.bias + (1 << 31) - 1 - q.bias, q.mult, q.shift,
                                   q.w_bits)
    with pytest.raises(IntRefError, match=r"'enc_proj' row \d+ can overflow the int32 accumulator"):
        IntRNNT(hparams=im.hparams, matrices=mats, col_step=im.col_step, out_step=im.out_step,
                embedding=im.embedding, logit_step=im.logit_step)


# -- the datapath ------------------------------------------------------------------------------

def test_stages_are_the_quant_matvec_of_the_earlier_issue():
    m = _model(4, sparsity=0.3)
    im = IntRNNT.from_model(m)
    g = torch.Generator().manual_seed(2)
    for name, q in im.matrices.items():
        z = torch.randint(-128, 128, (5, q.cols), generator=g)
        ref = int_matvec(q, z)
        if name.startswith("encoder") or name == "pred_lstm":
            H = q.rows // 4
            st = im.lstm_step(name, z[:, :-H], z[:, -H:], torch.zeros(5, H, dtype=torch.int16))
            assert_equal(st.a.numpy(), ref.numpy())
        else:
            assert_equal(im.project(name, z).numpy(), ref.numpy())


def _naive_lstm(q, x, h, c):
    """One LSTM step in plain Python integers, straight from the module docstring."""
    z = list(x) + list(h)
    H = len(h)
    a = []
    for r in range(q.rows):
        acc = sum(int(q.weight[r, k]) * z[k] for k in range(len(z))) + int(q.bias[r])
        p, s = acc * int(q.mult[r]), int(q.shift[r])
        y = (p + (1 << (s - 1))) >> s if s else p
        a.append(max(-128, min(127, y)))
    sig = lambda v: int(SIGMOID_LUT[v + 128])
    cs, hs = [], []
    for k in range(H):
        i, f, g, o = sig(a[k]), sig(a[H + k]), int(TANH_LUT[a[2 * H + k] + 128]), sig(a[3 * H + k])
        cn, _, hn = _naive_cell(i, f, g, o, c[k])
        cs.append(cn)
        hs.append(hn)
    return a, cs, hs


def test_lstm_step_against_naive_python():
    m = _model(8, seed=3, scale=3.0)                 # saturating gates and cells
    im = IntRNNT.from_model(m)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-128, 128, (FEATURE_DIM,), generator=g)
    h = torch.randint(-128, 128, (16,), generator=g)
    c = torch.randint(-32768, 32768, (16,), generator=g)
    st = im.lstm_step("encoder.0", x, h, c)
    a, cs, hs = _naive_lstm(im.matrices["encoder.0"], x.tolist(), h.tolist(), c.tolist())
    assert_equal(st.a.numpy(), a)
    assert_equal(st.c.numpy(), cs)
    assert_equal(st.h.numpy(), hs)
    assert (st.a.abs() >= 127).any() and (st.c.abs() > 4 * 2048).any()


def test_outputs_are_integers_of_the_documented_widths():
    m = _model(4)
    im = IntRNNT.from_model(m)
    x = _codes(5, 0)
    enc, st = im.encoder_step(x[0])
    assert enc.dtype == torch.int8 and enc.shape == (16,)
    assert st[0].dtype == torch.int8 and st[1].dtype == torch.int16 and st[0].shape == (2, 16)
    enc, st = im.transcribe(x, return_state=True)
    assert enc.dtype == torch.int8 and enc.shape == (5, 16)
    p, pst = im.predict_step(BLANK)
    assert p.dtype == torch.int8 and pst[0].dtype == torch.int8 and pst[1].dtype == torch.int16
    logits = im.join(enc, p)
    assert logits.dtype == torch.int8 and logits.shape == (5, 29)
    step = im.lstm_step("encoder.0", x[0], st[0][0], st[1][0])
    assert all(not t.dtype.is_floating_point for t in step)
    for q in im.matrices.values():
        assert not q.weight.dtype.is_floating_point and not q.bias.dtype.is_floating_point
    assert im.embedding.dtype == torch.int8
    with pytest.raises(ValueError, match="integer codes, not torch.float32"):
        im.encoder_step(x[0].float())
    with pytest.raises(ValueError, match=r"outside \[-128, 127\]"):
        im.join(enc.long() + 200, p)
    with pytest.raises(ValueError, match=r"features must have shape \(T, F\) or \(N, T, F\)"):
        im.transcribe(x[:, :10])


class _NoFloat(torch.overrides.TorchFunctionMode):
    """Fails on any torch operation that produces a floating-point tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor) and (t.dtype.is_floating_point or t.dtype.is_complex):
                raise AssertionError(f"{func} produced a {t.dtype} tensor")
        return out


def test_datapath_uses_no_floating_point():
    im = IntRNNT.from_model(_model(8, seed=2, sparsity=0.5))
    x = _codes(6, 2)
    with _NoFloat():
        enc = im.transcribe(x)
        e1, st = im.encoder_step(x[0])
        p, pst = im.predict_step(torch.tensor([0, 4]))
        p, pst = im.predict_step(torch.tensor([7, 1]), pst)
        logits = im.join(enc[:, None], p[None])
    assert logits.shape == (6, 2, 29)
    with pytest.raises(AssertionError, match="float32"), _NoFloat():
        im.dequantize_logits(logits)             # the host's part is float, and is detected


def test_deterministic():
    m = _model(8, seed=4)
    a, b = IntRNNT.from_model(m), IntRNNT.from_model(m)
    x = _codes(12, 4)
    ea, eb = a.transcribe(x), b.transcribe(x)
    assert_equal(ea.numpy(), eb.numpy())
    assert_equal(ea.numpy(), a.transcribe(x).numpy())
    p = a.predict_step(torch.tensor([0, 3]))[0]
    assert_equal(a.join(ea[:, None], p[None]).numpy(), b.join(eb[:, None], p[None]).numpy())


def test_streaming_step_by_step_equals_whole_and_chunks():
    im = IntRNNT.from_model(_model(4, seed=5, scale=2.0))
    x = _codes(21, 5)
    whole, st_whole = im.transcribe(x, return_state=True)
    st = None
    for t in range(21):
        e, st = im.encoder_step(x[t], st)
        assert_equal(e.numpy(), whole[t].numpy())
    assert_equal(st[0].numpy(), st_whole[0].numpy())
    assert_equal(st[1].numpy(), st_whole[1].numpy())
    a, s1 = im.transcribe(x[:8], return_state=True)
    b, s2 = im.transcribe(x[8:], s1, return_state=True)
    assert_equal(torch.cat([a, b]).numpy(), whole.numpy())
    assert_equal(s2[1].numpy(), st_whole[1].numpy())


def test_batched_equals_one_by_one_and_padded_state():
    im = IntRNNT.from_model(_model(8, seed=6))
    x = _codes(10, 6, n=3)
    lengths = torch.tensor([10, 4, 0])
    enc, (h, c) = im.transcribe(x, lengths=lengths, return_state=True)
    for n in range(3):
        L = int(lengths[n])
        e1, (h1, c1) = im.transcribe(x[n], return_state=True) if L == 10 else \
            im.transcribe(x[n, :L], return_state=True)
        assert_equal(enc[n, :L].numpy(), e1.numpy())
        assert_equal(h[:, n].numpy(), h1.numpy())
        assert_equal(c[:, n].numpy(), c1.numpy())
    assert (h[:, 2] == 0).all() and (c[:, 2] == 0).all()
    toks = torch.tensor([0, 5, 28])
    p, (ph, pc) = im.predict_step(toks)
    for n in range(3):
        p1, (ph1, pc1) = im.predict_step(int(toks[n]))
        assert_equal(p[n].numpy(), p1.numpy())
        assert_equal(ph[:, n].numpy(), ph1.numpy())


# -- agreement with the fake-quantized model ---------------------------------------------------

@pytest.mark.parametrize("w_bits, sparsity, dtype", [
    (4, 0.0, torch.float32), (8, 0.0, torch.float32), (4, 0.7, torch.float32),
    (8, 0.5, torch.float32), (4, 0.5, torch.float64), (8, 0.0, torch.float64),
])
def test_agreement_with_fake_quant_within_ties(w_bits, sparsity, dtype):
    m = _model(w_bits, seed=7, dtype=dtype, sparsity=sparsity, scale=2.0)
    im = IntRNNT.from_model(m)
    r = compare(m, im, _codes(24, 7))
    stages = r["stages"]
    assert r["frames"] == 24 and r["steps"] == 29
    expect = {f"encoder.{l}.{s}" for l in (0, 1) for s in ("gates", "c", "h")} | {
        "enc", "enc_whole", "embedding", "pred_lstm.gates", "pred_lstm.c", "pred_lstm.h",
        "pred", "logits"}
    assert set(stages) == expect
    assert stages["logits"]["values"] == 24 * 29 * 29
    assert stages["encoder.0.gates"]["values"] == 24 * 64
    for name, s in stages.items():
        assert s["unexplained"] == 0, (name, s)
        assert s["local"] <= 1e-3 * s["values"] + 1, (name, s)
        if dtype == torch.float64:
            assert s["free"] == s["local"] == 0, (name, s)
    assert int(sum(s["values"] for s in stages.values())) > 25000


def test_mixed_widths_agree():
    m = _model(4, seed=10, sparsity=0.5)
    m.set_quantization(w_bits=4, overrides={"out": 8, "encoder.0": 8})
    im = IntRNNT.from_model(m)
    assert {n: q.w_bits for n, q in im.matrices.items()} == m.w_bits
    stages = compare(m, im, _codes(12, 10))["stages"]
    assert all(s["unexplained"] == 0 and s["local"] <= 1 for s in stages.values()), stages


def test_compare_notices_a_wrong_integer_model():
    m = _model(8, seed=8)
    im = IntRNNT.from_model(m)
    q = im.matrices["pred_proj"]
    im.matrices["pred_proj"] = QuantLinear(q.weight, q.bias + 40, q.mult, q.shift, q.w_bits,
                                           w_scale=q.w_scale)
    im._fast["pred_proj"] = type(im._fast["pred_proj"]).of(im.matrices["pred_proj"])
    r = compare(m, im, _codes(4, 8))
    assert r["stages"]["pred"]["unexplained"] > 0
    assert r["stages"]["enc"]["local"] == 0
    m.logit_observer.maxabs.fill_(7.0)
    with pytest.raises(IntRefError, match="logit step"):
        compare(m, im, _codes(4, 8))


# -- a briefly trained model: decoding -----------------------------------------------------------

TEXTS = ["yes", "no", "stop", "go on"]


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained 150 steps on four synthetic utterances, then pruned and quantized."""
    g = torch.Generator().manual_seed(0)
    codes = [torch.randint(-128, 128, (n, FEATURE_DIM), generator=g).to(torch.int8)
             for n in (7, 6, 8, 8)]
    data = UtteranceSet.from_codes(codes, TEXTS)
    torch.manual_seed(0)
    m = rnnt(preset="tiny")
    x = dequantize_features(torch.cat(data.codes)).double()
    m.set_feature_normalization(x.mean(0).float(), x.std(0).float())
    cfg = TrainConfig(preset="tiny", epochs=150, batch_size=4, lr=0.03, warmup_steps=5,
                      spec_augment=False)
    fit(m, data, None, cfg, progress=False, log=None)
    return m.eval(), data


@pytest.mark.parametrize("w_bits", [4, 8])
def test_trained_model_transcripts_equal_where_codes_agree(trained, w_bits):
    fp32, data = trained
    m = quantize_post_training(prune_post_training(fp32, 0.4), w_bits)
    im = IntRNNT.from_model(m)
    for q in data.codes:                               # the codes agree on these inputs ...
        stages = compare(m, im, q, tokens=torch.tensor([3, 7, 1]))["stages"]
        assert all(s["free"] == 0 for s in stages.values()), stages
    feats, lengths, _, _ = collate(data, [0, 1, 2, 3])
    hyp = greedy_batch(m, feats, lengths)
    assert greedy_batch(im.decoder(), feats, lengths) == hyp     # float features on the grid
    codes = torch.nn.utils.rnn.pad_sequence(list(data.codes), batch_first=True)
    assert greedy_batch(im.decoder(), codes, lengths) == hyp
    assert sum(len(h) for h in hyp) >= 4                          # ... and it says something
    for q in data.codes[:2]:                           # ... so does beam search, scores and all
        assert beam_search(im.decoder(), q, beam=3, nbest=3) == \
            beam_search(m, dequantize_features(q), beam=3, nbest=3)


def test_decoder_refuses_off_grid_features():
    dec = IntRNNT.from_model(_model(4)).decoder()
    with pytest.raises(ValueError, match="not on the int8 feature grid"):
        greedy_batch(dec, torch.full((1, 3, FEATURE_DIM), 0.01))


# -- transcribe --int and the WER comparison ---------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("intref")
    save(d / "q4.ckpt", _model(4, seed=9))
    torch.manual_seed(0)
    save(d / "fp32.ckpt", rnnt(preset="tiny"))
    rng = np.random.default_rng(0)
    t = np.arange(12000) / 16000
    for i, f0 in enumerate((220.0, 330.0)):
        audio = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        write_wav(d / f"a{i}.wav", audio + 0.01 * rng.standard_normal(len(t)))
    lines = [{"id": f"u{i}", "audio": f"a{i}.wav", "text": text, "duration": 0.75, "voice": "x",
              "speed": 175, "pitch": 50, "snr_db": None, "template": f"t.{i}", "split": "test",
              "heldout": bool(i)} for i, text in enumerate(("turn on the light", "call bob"))]
    (d / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_transcribe_int_is_the_integer_reference(files, capsys):
    from model.audio import load_audio
    from model.frontend import features_int8
    from sim.cli import main

    wavs = [str(files / "a0.wav"), str(files / "a1.wav")]
    code = main(["transcribe", "--int", "--model", str(files / "q4.ckpt"), "--beam", "3",
                 "--json"] + wavs)
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0 and len(out) == 2
    im = IntRNNT.from_model(load(files / "q4.ckpt").model)
    for o, w in zip(out, wavs):
        q = features_int8(torch.from_numpy(load_audio(w)))
        ref = beam_search(im.decoder(), q, beam=3, nbest=3)
        assert [(h["text"], h["score"]) for h in o["nbest"]] == [(t, s) for t, s in ref]


def test_transcribe_int_refuses_a_float_checkpoint(files, capsys):
    from sim.cli import main

    code = main(["transcribe", "--int", "--model", str(files / "fp32.ckpt"),
                 str(files / "a0.wav")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--int" in err and "fp32.ckpt" in err and "not quantized" in err


def test_wer_int_vs_fakequant(files):
    r = wer_int_vs_fakequant(files / "q4.ckpt", files / "test.jsonl", limit=2)
    assert r["utterances"] == 2 and r["beam"] == 1
    assert [u["ref"] for u in r["int"]["utterances"]] == ["turn on the light", "call bob"]
    assert r["wer_delta"] == pytest.approx(r["int"]["all"]["wer"] - r["fake_quant"]["all"]["wer"])
    assert r["identical"] == 2 and r["wer_delta"] == 0.0
    assert r["int"]["held_out_templates"]["utterances"] == 1
    with pytest.raises(IntRefError, match="not quantized"):
        wer_int_vs_fakequant(files / "fp32.ckpt", files / "test.jsonl", limit=1)
