"""Tests of model/audio.py: formats, rates, channels, and the one-line errors."""

import math

import numpy as np
import pytest
import soundfile as sf
from numpy.testing import assert_allclose, assert_equal

from model.audio import (SAMPLE_RATE, AudioError, check_not_silent, load_audio, resample,
                         write_wav)


def sine(rate, seconds, freq, amp=0.5, phase=0.0):
    t = np.arange(round(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t + phase)


def int16_codes(x):
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def assert_one_line_error(path, match):
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text, text
    return text


# -- reading ---------------------------------------------------------------------------------

def test_int16_wav_round_trip_is_exact(tmp_path):
    codes = int16_codes(sine(SAMPLE_RATE, 0.5, 440))
    codes[:4] = [-32768, 32767, 0, -1]
    path = tmp_path / "a.wav"
    write_wav(path, codes)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.shape == codes.shape
    assert_equal(got, codes.astype(np.float32) / 32768)
    assert sf.info(str(path)).subtype == "PCM_16"


def test_write_wav_float_is_scaled_rounded_and_saturated(tmp_path):
    x = np.array([0.0, 1.0, -1.0, 1.5, -2.0, 0.5, 1 / 65536, 3 / 65536, -0.25])
    path = tmp_path / "f.wav"
    write_wav(path, x)
    codes, rate = sf.read(str(path), dtype="int16")
    assert rate == SAMPLE_RATE
    assert_equal(codes, [0, 32767, -32768, 32767, -32768, 16384, 0, 2, -8192])


@pytest.mark.parametrize("subtype,step", [("PCM_16", 2 ** -15), ("PCM_24", 2 ** -23),
                                          ("PCM_32", 2 ** -31), ("PCM_U8", 2 ** -7),
                                          ("FLOAT", None), ("DOUBLE", None)])
def test_sample_formats(tmp_path, subtype, step):
    x = sine(SAMPLE_RATE, 0.25, 300, amp=0.7)
    path = tmp_path / f"{subtype}.wav"
    sf.write(str(path), x, SAMPLE_RATE, subtype=subtype)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.shape == x.shape
    tol = (step if step else 0.0) + 2 ** -24
    assert_allclose(got, x, rtol=0, atol=tol)


def test_flac(tmp_path):
    codes = int16_codes(sine(SAMPLE_RATE, 0.5, 1000, amp=0.3))
    path = tmp_path / "a.flac"
    sf.write(str(path), codes, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    assert_equal(load_audio(path), codes.astype(np.float32) / 32768)       # lossless


def test_stereo_is_mixed_down_to_the_mean(tmp_path):
    left = int16_codes(sine(SAMPLE_RATE, 0.3, 440, amp=0.6))
    right = int16_codes(sine(SAMPLE_RATE, 0.3, 660, amp=0.2))
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), SAMPLE_RATE, subtype="PCM_16")
    want = (left.astype(np.float64) + right) / 65536                # exact in float32
    assert_equal(load_audio(path), want.astype(np.float32))


def test_multichannel_float_is_mixed_down(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (1000, 4)).astype(np.float32)
    path = tmp_path / "quad.wav"
    sf.write(str(path), x, SAMPLE_RATE, subtype="FLOAT")
    assert_allclose(load_audio(path), x.astype(np.float64).mean(axis=1), rtol=0, atol=1e-7)


def test_float_beyond_full_scale_is_clipped(tmp_path):
    x = np.array([0.0, 1.5, -3.0, 0.25, 1.0, -1.0], dtype=np.float32)
    path = tmp_path / "loud.wav"
    sf.write(str(path), x, SAMPLE_RATE, subtype="FLOAT")
    assert_equal(load_audio(path), np.array([0.0, 1.0, -1.0, 0.25, 1.0, -1.0], np.float32))


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_resampling_preserves_a_tone(tmp_path, rate):
    """A 440 Hz tone at any rate loads as the same tone at 16 kHz (checked against the analytic
    sine away from the edges, where the anti-aliasing filter's transient lives)."""
    seconds = 0.5
    path = tmp_path / f"tone{rate}.wav"
    sf.write(str(path), sine(rate, seconds, 440, amp=0.5, phase=0.3), rate, subtype="FLOAT")
    got = load_audio(path)
    n_in = round(rate * seconds)
    assert got.shape == (math.ceil(n_in * SAMPLE_RATE / rate),)
    want = sine(SAMPLE_RATE, len(got) / SAMPLE_RATE, 440, amp=0.5, phase=0.3)
    middle = slice(800, len(got) - 800)
    assert_allclose(got[middle], want[middle], rtol=0, atol=2e-3)


def test_resampling_removes_content_above_the_new_nyquist(tmp_path):
    """A 12 kHz tone at 44.1 kHz is above 8 kHz: it must not alias into the 16 kHz signal."""
    path = tmp_path / "high.wav"
    sf.write(str(path), sine(44100, 0.5, 12000, amp=0.5), 44100, subtype="FLOAT")
    got = load_audio(path)
    assert np.abs(got[800:-800]).max() < 0.01


def test_44k1_stereo_int16(tmp_path):
    left = int16_codes(sine(44100, 0.4, 500, amp=0.4))
    right = int16_codes(sine(44100, 0.4, 500, amp=0.2))
    path = tmp_path / "cd.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    got = load_audio(path)
    assert got.shape == (math.ceil(len(left) * 160 / 441),)
    want = sine(SAMPLE_RATE, len(got) / SAMPLE_RATE, 500, amp=0.3)
    assert_allclose(got[800:-800], want[800:-800], rtol=0, atol=2e-3)


def test_resample_function():
    x = np.linspace(-2, 2, 100)
    assert_equal(resample(x, 16000), np.clip(x, -1, 1).astype(np.float32))
    assert resample(np.zeros(441), 44100).shape == (160,)
    with pytest.raises(ValueError, match="sample rates must be positive integers"):
        resample(x, 0)
    with pytest.raises(ValueError, match=r"one-dimensional \(S,\)"):
        resample(np.zeros((3, 2)), 8000)


# -- errors ----------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "nope.wav", "no such file")


def test_directory(tmp_path):
    assert_one_line_error(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert_one_line_error(path, r"is empty \(0 bytes\)")


def test_text_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("set a timer for ten minutes\nthen call mom\n")
    assert_one_line_error(path, "is not an audio file .*expected WAV or FLAC")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.flac"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_one_line_error(path, "is not an audio file")


def test_truncated_wav(tmp_path):
    full = tmp_path / "full.wav"
    write_wav(full, sine(SAMPLE_RATE, 1.0, 440))
    data = full.read_bytes()
    assert len(data) == 44 + 32000
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:20001])
    text = assert_one_line_error(cut, "is truncated")
    assert "declares 32000 bytes but only 19957 are present" in text


def test_truncated_wav_header(tmp_path):
    full = tmp_path / "full.wav"
    write_wav(full, sine(SAMPLE_RATE, 0.1, 440))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:30])                 # inside the fmt chunk
    assert_one_line_error(cut, "is truncated")


def test_truncated_flac(tmp_path):
    full = tmp_path / "full.flac"
    rng = np.random.default_rng(2)
    sf.write(str(full), int16_codes(0.3 * rng.standard_normal(32000)), SAMPLE_RATE,
             subtype="PCM_16", format="FLAC")
    data = full.read_bytes()
    for keep in (len(data) // 2, len(data) - 7):
        cut = tmp_path / f"cut{keep}.flac"
        cut.write_bytes(data[:keep])
        assert_one_line_error(cut, "truncated")
    head = tmp_path / "head.flac"
    head.write_bytes(data[:50])                             # inside STREAMINFO
    assert_one_line_error(head, "damaged or truncated")


def test_intact_wav_with_extra_chunk_is_not_truncated(tmp_path):
    """A LIST chunk after the data, and an odd-sized chunk before it, are legal."""
    x = int16_codes(sine(SAMPLE_RATE, 0.1, 440))
    pcm = x.tobytes()
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
           + (1).to_bytes(2, "little") + SAMPLE_RATE.to_bytes(4, "little")
           + (2 * SAMPLE_RATE).to_bytes(4, "little") + (2).to_bytes(2, "little")
           + (16).to_bytes(2, "little"))
    odd = b"junk" + (3).to_bytes(4, "little") + b"abc\x00"          # padded to even
    data = b"data" + len(pcm).to_bytes(4, "little") + pcm
    listc = b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    body = b"WAVE" + fmt + odd + data + listc
    path = tmp_path / "chunks.wav"
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    assert_equal(load_audio(path), x.astype(np.float32) / 32768)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    write_wav(path, np.zeros(0))
    assert path.stat().st_size == 44
    assert_one_line_error(path, r"holds no audio \(0 samples\)")


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(str(path), np.array([0.0, np.nan, 0.1], dtype=np.float32), SAMPLE_RATE,
             subtype="FLOAT")
    assert_one_line_error(path, "NaN or infinite")


# -- silence ---------------------------------------------------------------------------------

def test_silent_file_loads_but_fails_the_check(tmp_path):
    path = tmp_path / "silent.wav"
    write_wav(path, np.zeros(16000))
    audio = load_audio(path)
    assert_equal(audio, 0.0)
    with pytest.raises(AudioError, match=r"is silent \(peak below -60 dBFS\)") as info:
        check_not_silent(audio, path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_silence_threshold():
    below = sine(SAMPLE_RATE, 0.1, 440, amp=10 ** (-61 / 20), phase=1.0)
    above = sine(SAMPLE_RATE, 0.1, 440, amp=10 ** (-59 / 20), phase=1.0)
    with pytest.raises(AudioError, match="x.wav is silent"):
        check_not_silent(below, "x.wav")
    check_not_silent(above, "x.wav")
    with pytest.raises(AudioError, match="is silent"):
        check_not_silent(np.zeros(0), "x.wav")


# -- write_wav arguments ---------------------------------------------------------------------

def test_write_wav_rate_and_channels(tmp_path):
    path = tmp_path / "s.wav"
    x = np.stack([sine(8000, 0.1, 100), sine(8000, 0.1, 200)], axis=1)
    write_wav(path, x, 8000)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 2, "PCM_16")


@pytest.mark.parametrize("audio,rate,match", [
    (np.zeros((2, 2, 2)), 16000, r"shape \(S,\) or \(S, C\)"),
    (np.zeros(4, dtype=np.int32), 16000, "floating point in \\[-1, 1\\] or int16"),
    (np.array([0.0, np.inf]), 16000, "NaN or infinite"),
    (np.zeros(4), 0, "sample_rate must be a positive integer"),
    (np.zeros(4), 8000.5, "sample_rate must be a positive integer"),
])
def test_write_wav_rejects_bad_arguments(tmp_path, audio, rate, match):
    with pytest.raises(ValueError, match=match):
        write_wav(tmp_path / "bad.wav", audio, rate)


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)
