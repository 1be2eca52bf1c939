"""Tests of compiler/compress.py: the vectorised encoder against the scalar one and the naive
golden decoder."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_equal

from compiler.compress import (compress_word, compress_words, compressed_sizes,
                               decompress_stream, dense_word_value)
from rtl.config import HardwareConfig
from rtl.memfmt import compressed_word_bytes

CONFIGS = {
    "tiny-w8": HardwareConfig.tiny(),
    "tiny-w4": HardwareConfig.tiny().replace(weight_bits=4),
    "default-w4": HardwareConfig.default(),
    "default-w8": HardwareConfig.default().replace(weight_bits=8),
}


def random_words(cfg, n, sparsity, seed):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(n, cfg.k))
    w[rng.random(w.shape) < sparsity] = 0
    return w


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(CONFIGS)), n=st.integers(0, 40),
       sparsity=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)),
       seed=st.integers(0, 2 ** 32 - 1))
def test_round_trip(name, n, sparsity, seed):
    cfg = CONFIGS[name]
    w = random_words(cfg, n, sparsity, seed)
    blob = compress_words(cfg, w)
    # the vectorised encoder is the scalar one, word after word
    pieces = [compress_word(cfg, row) for row in w]
    assert blob == b"".join(pieces)
    for row, piece in zip(w, pieces):
        assert len(piece) == compressed_word_bytes(cfg, int(np.count_nonzero(row)))
    assert_equal(compressed_sizes(cfg, w).tolist(), [len(p) for p in pieces])
    assert_equal(decompress_stream(cfg, blob, n), w.reshape(n, cfg.k))
    # trailing stream padding is ignored
    assert_equal(decompress_stream(cfg, blob + bytes(7), n), w.reshape(n, cfg.k))


def test_known_bytes_8bit():
    cfg = HardwareConfig.tiny()                       # K=8, 8-bit weights
    w = [0, 1, 0, -1, 0, 0, 0, 127]
    assert compress_word(cfg, w) == bytes([0b10001010, 0x01, 0xFF, 0x7F])
    assert compress_word(cfg, [0] * 8) == bytes([0])
    assert compress_word(cfg, [-128] * 8) == bytes([0xFF] + [0x80] * 8)


def test_known_bytes_4bit():
    cfg = HardwareConfig.tiny().replace(weight_bits=4)
    w = [0, 1, 0, -1, 0, 0, 0, 7]
    # values 1, -1 (0xF), 7 packed LSB first: 0xF1, then 0x7 padded with a zero nibble
    assert compress_word(cfg, w) == bytes([0b10001010, 0xF1, 0x07])
    assert compress_words(cfg, np.array([w, [-8] + [0] * 7])) == \
        bytes([0b10001010, 0xF1, 0x07, 0x01, 0x08])


def test_bitmap_spans_bytes_lsb_first():
    cfg = HardwareConfig.default()                    # K=64: 8 bitmap bytes
    w = [0] * 64
    w[9] = 3
    w[63] = -2
    blob = compress_word(cfg, w)
    assert blob[:8] == bytes([0, 0b10, 0, 0, 0, 0, 0, 0x80])
    assert blob[8:] == bytes([0xE3])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_range_errors_name_the_value(name):
    cfg = CONFIGS[name]
    too_big = 1 << (cfg.weight_bits - 1)
    w = [0] * cfg.k
    w[3] = too_big
    with pytest.raises(ValueError, match=rf"weight {too_big} at index 3 does not fit"):
        compress_word(cfg, w)
    with pytest.raises(ValueError, match=rf"weight {too_big} at \[0, 3\] does not fit"):
        compress_words(cfg, np.array([w]))
    with pytest.raises(ValueError, match=rf"weight {too_big} at index 3"):
        dense_word_value(cfg, w)
    with pytest.raises(ValueError, match=f"K={cfg.k}"):
        compress_word(cfg, [0] * (cfg.k + 1))
    with pytest.raises(ValueError, match="shape"):
        compress_words(cfg, np.zeros((2, cfg.k + 1), dtype=np.int64))


def test_truncated_stream():
    cfg = HardwareConfig.tiny()
    blob = compress_word(cfg, [1, 2, 3, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="truncated in the values of word 0"):
        decompress_stream(cfg, blob[:-1], 1)
    with pytest.raises(ValueError, match="truncated in the bitmap of word 1"):
        decompress_stream(cfg, blob, 2)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_dense_word_value(name):
    cfg = CONFIGS[name]
    wb = cfg.weight_bits
    w = random_words(cfg, 1, 0.3, seed=4)[0]
    v = dense_word_value(cfg, w)
    assert 0 <= v < 1 << cfg.wword_bits
    for k in range(cfg.k):
        field = (v >> (k * wb)) & ((1 << wb) - 1)
        assert field - (field >> (wb - 1) << wb) == w[k]
    w = [0] * cfg.k
    w[1] = -1
    assert dense_word_value(cfg, w) == ((1 << wb) - 1) << wb


def test_compress_words_is_fast():
    cfg = HardwareConfig.default()                    # a 1024x1024 layer: 16384 words of 64
    w = random_words(cfg, 16384, 0.8, seed=0)
    t = time.perf_counter()
    blob = compress_words(cfg, w)
    assert time.perf_counter() - t < 1.0
    assert len(blob) == int(compressed_sizes(cfg, w).sum())
