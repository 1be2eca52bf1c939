"""Tests of model/frontend.py against a textbook numpy log-mel and naive scalar models."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_equal

from model.frontend import (F_MAX, F_MIN, FEATURE_DIM, FEATURE_MAX, FEATURE_MIN, FEATURE_OFFSET,
                            FEATURE_SCALE, FEATURE_ZERO_POINT, HOP_LENGTH, LOG_FLOOR, N_FFT,
                            N_MELS, WIN_LENGTH, dequantize_features, features, features_batch,
                            features_int8, hz_to_mel, log_mel, mel_filterbank, mel_to_hz,
                            num_encoder_frames, num_frames, quantize_features, stack_frames)

RATE = 16000


# -- textbook golden models, written from the formulas ---------------------------------------

def mel_htk(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_htk_inverse(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def filterbank_ref(n_fft=512, n_mels=64, rate=16000, f_lo=20.0, f_hi=7600.0):
    """Triangles between mel-spaced edges, one bin and one filter at a time."""
    m_lo, m_hi = mel_htk(f_lo), mel_htk(f_hi)
    edges = [mel_htk_inverse(m_lo + i * (m_hi - m_lo) / (n_mels + 1)) for i in range(n_mels + 2)]
    fb = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * rate / n_fft
            if left <= f <= centre:
                fb[k, m] = (f - left) / (centre - left)
            elif centre < f <= right:
                fb[k, m] = (right - f) / (right - centre)
    return fb


def log_mel_ref(audio):
    """Frame, window, DFT by an explicit matrix of complex exponentials, |.|^2, mel, log."""
    audio = np.asarray(audio, dtype=np.float64)
    n = np.arange(400)
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / 400) for i in range(400)])
    k = np.arange(257)
    dft = np.exp(-2j * math.pi * np.outer(k, n) / 512)         # (257, 400): zero padding to 512
    fb = filterbank_ref()
    rows = []
    t = 0
    while 160 * t + 400 <= len(audio):
        frame = audio[160 * t: 160 * t + 400] * window
        spectrum = dft @ frame
        power = spectrum.real ** 2 + spectrum.imag ** 2
        rows.append(np.log(np.maximum(power @ fb, 1e-6)))
        t += 1
    return np.array(rows).reshape(-1, 64)


def quantize_ref(x):
    """Scalar int8 code: Python's round() is half to even, like torch.round."""
    q = round(x / FEATURE_SCALE) - FEATURE_ZERO_POINT
    return max(-128, min(127, q))


def test_constants():
    assert (WIN_LENGTH, HOP_LENGTH, N_FFT, N_MELS) == (400, 160, 512, 64)
    assert FEATURE_DIM == 192 == 3 * N_MELS
    assert (F_MIN, F_MAX, LOG_FLOOR) == (20.0, 7600.0, 1e-6)
    assert FEATURE_OFFSET == FEATURE_ZERO_POINT * FEATURE_SCALE
    assert FEATURE_MIN == (-128 + FEATURE_ZERO_POINT) * FEATURE_SCALE
    assert FEATURE_MAX == (127 + FEATURE_ZERO_POINT) * FEATURE_SCALE
    assert FEATURE_ZERO_POINT == int(FEATURE_ZERO_POINT)


# -- mel scale and filterbank ----------------------------------------------------------------

def test_mel_scale_formula():
    for f in [0.0, 20.0, 700.0, 1000.0, 4000.0, 7600.0, 8000.0]:
        assert float(hz_to_mel(f)) == pytest.approx(mel_htk(f), rel=1e-15, abs=1e-12)
        assert float(mel_to_hz(hz_to_mel(f))) == pytest.approx(f, rel=1e-12, abs=1e-9)
    assert float(hz_to_mel(700.0)) == pytest.approx(2595.0 * math.log10(2.0), rel=1e-15)
    assert float(hz_to_mel(1000.0)) == pytest.approx(1000.0, abs=0.1)   # the mel's definition


def test_filterbank_matches_formula():
    fb = mel_filterbank()
    assert fb.shape == (257, 64) and fb.dtype == torch.float64
    assert_allclose(fb.numpy(), filterbank_ref(), rtol=1e-12, atol=1e-12)


def test_filterbank_other_parameters():
    fb = mel_filterbank(n_fft=256, n_mels=20, sample_rate=8000, f_min=0.0, f_max=4000.0)
    assert_allclose(fb.numpy(), filterbank_ref(256, 20, 8000, 0.0, 4000.0), rtol=1e-12,
                    atol=1e-12)


def test_filterbank_shape_properties():
    fb = mel_filterbank().numpy()
    freqs = np.arange(257) * RATE / N_FFT
    assert (fb >= 0).all() and (fb <= 1).all()
    assert (fb.sum(axis=0) > 0).all()                         # no empty filter
    assert (fb[freqs < F_MIN] == 0).all() and (fb[freqs > F_MAX] == 0).all()
    peaks = fb.argmax(axis=0)
    assert (np.diff(peaks) >= 0).all()                        # centres ascend
    # each filter is a single triangle: nonzero support is contiguous
    for m in range(N_MELS):
        nz = np.flatnonzero(fb[:, m])
        assert_equal(nz, np.arange(nz[0], nz[-1] + 1))


def test_filterbank_rejects_bad_parameters():
    with pytest.raises(ValueError, match="need 0 <= f_min < f_max <= sample_rate / 2"):
        mel_filterbank(f_max=9000.0)
    with pytest.raises(ValueError, match="narrower than the 31.25 Hz bin spacing"):
        mel_filterbank(n_mels=400)
    with pytest.raises(TypeError):
        mel_filterbank(512)                                   # keyword only


# -- log-mel ---------------------------------------------------------------------------------

def test_log_mel_matches_textbook_on_noise_and_tones():
    rng = np.random.default_rng(0)
    t = np.arange(5000) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3150 * t)
             + 0.05 * rng.standard_normal(5000))
    audio[3000:3600] = 0.0                                  # a stretch of digital silence
    got = log_mel(torch.from_numpy(audio.astype(np.float32)))
    want = log_mel_ref(audio.astype(np.float32))
    assert got.dtype == torch.float32 and got.shape == want.shape == (num_frames(5000), 64)
    assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_log_mel_accepts_numpy_and_float64():
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.5, 0.5, 1200)
    assert_equal(log_mel(audio).numpy(), log_mel(torch.from_numpy(audio)).numpy())
    assert_allclose(log_mel(audio).numpy(), log_mel_ref(audio), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("samples,frames", [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2),
                                            (16000, 98), (16080, 99)])
def test_frame_count(samples, frames):
    assert num_frames(samples) == frames
    assert log_mel(torch.zeros(samples)).shape == (frames, N_MELS)
    assert num_encoder_frames(samples) == frames // 3


def test_frames_are_causal_windows():
    """An impulse at sample 1000 reaches exactly the frames whose window covers it."""
    audio = torch.zeros(3000)
    audio[1000] = 0.5
    lm = log_mel(audio)
    floor = math.log(LOG_FLOOR)
    hit = [t for t in range(lm.shape[0]) if bool((lm[t] > floor).any())]
    assert hit == [t for t in range(lm.shape[0]) if 160 * t <= 1000 < 160 * t + 400] == [4, 5, 6]
    assert_equal(lm[[0, 1, 2, 3, 7, 8]].numpy(), np.float32(floor))


def test_silence_gives_the_floor():
    assert_equal(log_mel(torch.zeros(1600)).numpy(), np.float32(math.log(LOG_FLOOR)))


def test_sine_peaks_in_its_filter():
    t = np.arange(8000) / RATE
    centres = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))[1:-1]
    for m in [5, 30, 60]:
        lm = log_mel(np.sin(2 * np.pi * centres[m] * t))
        assert int(lm.mean(0).argmax()) == m


@pytest.mark.parametrize("bad,match", [(torch.zeros(2, 100), r"one-dimensional \(S,\)"),
                                       (torch.zeros(100, dtype=torch.int16), "floating point")])
def test_log_mel_rejects_bad_audio(bad, match):
    with pytest.raises(ValueError, match=match):
        log_mel(bad)


# -- stacking --------------------------------------------------------------------------------

@pytest.mark.parametrize("t", [0, 1, 2, 3, 4, 8, 9, 10])
@pytest.mark.parametrize("stack", [1, 3, 4])
def test_stack_frames_matches_loop(t, stack):
    feats = torch.arange(t * 5, dtype=torch.float32).reshape(t, 5)
    rows = []
    for j in range(t // stack):
        row = []
        for i in range(stack):
            row.extend(feats[stack * j + i].tolist())
        rows.append(row)
    got = stack_frames(feats, stack)
    assert got.shape == (t // stack, 5 * stack)
    assert_equal(got.numpy(), np.array(rows, dtype=np.float32).reshape(t // stack, 5 * stack))


def test_stack_frames_batched_and_errors():
    feats = torch.randn(2, 10, 4)
    got = stack_frames(feats)
    assert got.shape == (2, 3, 12)
    for n in range(2):
        assert_equal(got[n].numpy(), stack_frames(feats[n]).numpy())
    with pytest.raises(ValueError, match="stack must be >= 1"):
        stack_frames(feats, 0)
    with pytest.raises(ValueError, match=r"shape \(T, F\) or \(N, T, F\)"):
        stack_frames(torch.zeros(5))


# -- int8 code -------------------------------------------------------------------------------

def test_quantize_matches_scalar_formula():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.uniform(-30, 20, 2000),
                             (np.arange(-170, 170) + 0.5) * FEATURE_SCALE,   # exact ties
                             [FEATURE_MIN, FEATURE_MAX, -1e9, 1e9, 0.0]])
    got = quantize_features(torch.from_numpy(values))
    assert got.dtype == torch.int8
    assert_equal(got.numpy().astype(np.int64), [quantize_ref(float(x)) for x in values])


def test_quantize_float32_input_matches_scalar_formula():
    values = torch.linspace(-16, 12, 5001, dtype=torch.float32)
    got = quantize_features(values)
    assert_equal(got.numpy().astype(np.int64), [quantize_ref(float(x)) for x in values])


def test_dequantize_is_exact_and_inverts_quantize():
    codes = torch.arange(-128, 128, dtype=torch.int8)
    x = dequantize_features(codes)
    assert x.dtype == torch.float32
    assert_equal(x.numpy().astype(np.float64),
                 [(q + FEATURE_ZERO_POINT) * FEATURE_SCALE for q in range(-128, 128)])
    assert_equal(quantize_features(x).numpy(), codes.numpy())
    assert float(x[0]) == FEATURE_MIN and float(x[-1]) == FEATURE_MAX


def test_quantize_rejects_bad_input():
    with pytest.raises(ValueError, match="must be floating point"):
        quantize_features(torch.zeros(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize_features(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="codes must be int8"):
        dequantize_features(torch.zeros(3, dtype=torch.int16))


def test_int8_range_covers_the_signal_range():
    """Bottom: the log floor is representable (no clipping at -128). Top: no full-scale sine,
    nor a full-scale square wave up to 1 kHz, reaches code 127, and the Parseval bound of any
    [-1, 1] signal is within 1.3 nats of the top code."""
    floor_code = quantize_ref(math.log(LOG_FLOOR))
    assert -128 < floor_code <= -126
    t = np.arange(4000) / RATE
    for f in [60.0, 100.0, 440.0, 1000.0, 3000.0, 5000.0, 7000.0, 7500.0]:
        assert int(features_int8(np.sin(2 * np.pi * f * t)).max()) < 127, f
    for f in [60.0, 100.0, 440.0, 1000.0]:
        assert int(features_int8(np.sign(np.sin(2 * np.pi * f * t + 0.1))).max()) < 127, f
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    bound = math.log(512 * float(np.sum(window ** 2)))
    assert FEATURE_MAX < bound < FEATURE_MAX + 1.3
    rng = np.random.default_rng(3)
    assert float(log_mel(np.sign(rng.standard_normal(8000))).max()) < bound
    assert float(log_mel(np.sign(np.sin(2 * np.pi * 7000.0 * t + 0.1))).max()) < bound


def vowel(n, f0, formants):
    """A synthetic vowel: an f0 pulse train through two-pole formant resonators."""
    from scipy.signal import lfilter
    x = np.zeros(n)
    x[:: RATE // f0] = 1.0
    for formant, bandwidth in formants:
        r = math.exp(-math.pi * bandwidth / RATE)
        theta = 2 * math.pi * formant / RATE
        x = lfilter([1.0 - r], [1.0, -2 * r * math.cos(theta), r * r], x)
    return x * np.hanning(n) ** 0.25                  # onset and decay


def test_int8_codes_span_a_speech_like_signal():
    """Two synthetic vowels ("ah", "ee") with pauses, peak 0.5, white noise at 30 dB SNR: the
    codes span most of int8 (186 of 256 when written) and nothing clips. A coarser scale (1/8)
    would span about 140 codes."""
    rng = np.random.default_rng(4)
    x = np.concatenate([vowel(6400, 120, [(700, 110), (1220, 120), (2600, 160)]), np.zeros(3200),
                        vowel(6400, 110, [(300, 60), (2300, 200), (3000, 250)]), np.zeros(3200)])
    x *= 0.5 / np.abs(x).max()
    x += rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2)) * 10 ** (-30 / 20)
    q = features_int8(x).numpy().astype(np.int64)
    assert q.max() < 127 and q.min() > -128
    assert q.max() - q.min() + 1 >= 160


# -- features --------------------------------------------------------------------------------

def test_features_is_dequantized_features_int8():
    rng = np.random.default_rng(5)
    audio = 0.2 * rng.standard_normal(7777)
    q = features_int8(audio)
    f = features(audio)
    assert q.dtype == torch.int8 and f.dtype == torch.float32
    assert q.shape == f.shape == (num_encoder_frames(7777), FEATURE_DIM)
    assert_equal(f.numpy(), dequantize_features(q).numpy())
    assert_equal(q.numpy(), quantize_features(stack_frames(log_mel(audio))).numpy())
    # against the textbook path end to end: codes from the numpy log-mel, stacked by hand
    ref = log_mel_ref(audio.astype(np.float64))
    t = ref.shape[0] // 3
    ref_stacked = ref[: 3 * t].reshape(t, 3 * N_MELS)
    ref_codes = np.array([[quantize_ref(float(v)) for v in row] for row in ref_stacked])
    # float paths differ by ~1e-6; a code may flip only where the value sits on a rounding tie
    near_tie = np.abs(ref_stacked / FEATURE_SCALE - np.floor(ref_stacked / FEATURE_SCALE) - 0.5)
    agree = (q.numpy().astype(np.int64) == ref_codes) | (near_tie < 1e-4)
    assert agree.all()


def test_features_of_short_audio_is_empty():
    assert features(np.zeros(719)).shape == (0, FEATURE_DIM)           # 2 frames
    assert features_int8(np.zeros(0)).shape == (0, FEATURE_DIM)
    assert features(np.zeros(720)).shape == (1, FEATURE_DIM)        # 3 frames exactly


def test_features_batch_pads_with_zeros():
    rng = np.random.default_rng(6)
    audios = [0.1 * rng.standard_normal(s) for s in (4000, 1000, 2560)]
    feats, lengths = features_batch(audios)
    assert_equal(lengths.numpy(), [num_encoder_frames(len(a)) for a in audios])
    assert feats.shape == (3, int(lengths.max()), FEATURE_DIM)
    for i, a in enumerate(audios):
        assert_equal(feats[i, : lengths[i]].numpy(), features(a).numpy())
        assert_equal(feats[i, lengths[i]:].numpy(), 0.0)
