"""Compressed weight words: the encoder the compiler uses and the golden decoder.

Format (defined in :mod:`rtl.memfmt`): one weight-SRAM word of ``K`` signed ``weight_bits``
weights is stored in DRAM as

* a ``K``-bit nonzero bitmap, ``K/8`` bytes: bit ``k`` (LSB first, byte 0 first) is 1 iff
  weight ``k`` is nonzero;
* the nonzero weights in increasing ``k``, ``weight_bits`` each, two's complement, packed LSB
  first, zero-padded to a whole byte.

Words are concatenated back to back, with no alignment between them.

Dimension letters: ``N`` words, ``K`` weights per word (:attr:`HardwareConfig.k`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtl.config import HardwareConfig
from rtl.memfmt import compressed_word_bytes

__all__ = ["compress_word", "compress_words", "compressed_sizes", "decompress_stream",
           "dense_word_value"]


def _check_weights(cfg: HardwareConfig, words: np.ndarray) -> None:
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    bad = (words < lo) | (words > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"weight {int(words[idx])} at {list(idx)} does not fit signed "
                         f"weight_bits={cfg.weight_bits} [{lo}, {hi}]; quantize to "
                         f"{cfg.weight_bits} bits or use a config with a wider weight_bits")


def _as_words(cfg: HardwareConfig, words) -> np.ndarray:
    a = np.asarray(words)
    if a.dtype == object:
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"weights must be integers, not {a.dtype}")
    if a.ndim != 2 or a.shape[1] != cfg.k:
        raise ValueError(f"weight words must have shape [N, K] = [N, {cfg.k}], not {list(a.shape)}")
    a = a.astype(np.int64)
    _check_weights(cfg, a)
    return a


def compress_word(cfg: HardwareConfig, weights: Sequence[int]) -> bytes:
    """Compress one word of ``K`` weights (a plain, scalar implementation of the format).

    Parameters
    ----------
    cfg : HardwareConfig
    weights : sequence of int, length ``K``
        Signed ``cfg.weight_bits`` integers.

    Returns
    -------
    bytes
        ``K/8 + ceil(nnz * weight_bits / 8)`` bytes.
    """
    ws = [int(w) for w in weights]
    if len(ws) != cfg.k:
        raise ValueError(f"a word holds K={cfg.k} weights, not {len(ws)}")
    wb = cfg.weight_bits
    lo, hi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    bitmap = 0
    packed = 0
    n = 0
    for k, w in enumerate(ws):
        if not lo <= w <= hi:
            raise ValueError(f"weight {w} at index {k} does not fit signed weight_bits={wb} "
                             f"[{lo}, {hi}]")
        if w:
            bitmap |= 1 << k
            packed |= (w & ((1 << wb) - 1)) << (n * wb)
            n += 1
    return bitmap.to_bytes(cfg.bitmap_bytes, "little") + packed.to_bytes((n * wb + 7) // 8, "little")


def compressed_sizes(cfg: HardwareConfig, words) -> np.ndarray:
    """Bytes of each compressed word.

    Parameters
    ----------
    words : array_like of int, shape ``[N, K]``

    Returns
    -------
    numpy.ndarray
        ``int64``, shape ``[N]``; equals :func:`rtl.memfmt.compressed_word_bytes` per word.
    """
    a = _as_words(cfg, words)
    nnz = np.count_nonzero(a, axis=1)
    return cfg.bitmap_bytes + (nnz * cfg.weight_bits + 7) // 8


def compress_words(cfg: HardwareConfig, words) -> bytes:
    """Compress ``N`` words into one back-to-back stream (vectorised :func:`compress_word`).

    Parameters
    ----------
    cfg : HardwareConfig
    words : array_like of int, shape ``[N, K]``
        Signed ``cfg.weight_bits`` integers.

    Returns
    -------
    bytes
        The concatenation of ``compress_word(cfg, words[i])`` for ``i = 0 .. N-1``.
    """
    a = _as_words(cfg, words)
    N, K = a.shape
    wb = cfg.weight_bits
    if 8 % wb:
        raise ValueError(f"compress_words supports weight_bits dividing 8, not {wb}")
    per_byte = 8 // wb
    if N == 0:
        return b""
    nz = a != 0
    nnz = nz.sum(axis=1)
    sizes = cfg.bitmap_bytes + (nnz * wb + 7) // 8
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out = np.zeros(int(ends[-1]), dtype=np.uint8)
    # bitmaps
    bitmap = np.packbits(nz, axis=1, bitorder="little")                 # [N, K/8]
    out[starts[:, None] + np.arange(cfg.bitmap_bytes)] = bitmap
    # values: nonzero j of word i goes to byte starts[i] + K/8 + j // per_byte,
    # bits wb * (j % per_byte) ...
    wi, _ = np.nonzero(nz)                                               # row-major: k ascending
    j = (np.cumsum(nz, axis=1) - 1)[nz]
    vals = (a[nz] & ((1 << wb) - 1)).astype(np.uint8)
    pos = starts[wi] + cfg.bitmap_bytes + j // per_byte
    sub = j % per_byte
    for s in range(per_byte):
        sel = sub == s
        out[pos[sel]] |= (vals[sel] << (wb * s)).astype(np.uint8)      # positions unique per s
    return out.tobytes()


def decompress_stream(cfg: HardwareConfig, blob: bytes, n_words: int) -> np.ndarray:
    """Decode ``n_words`` compressed words: the golden model of the hardware decompressor.

    Deliberately naive (one bit and one weight at a time, Python integers) so that it is
    obviously a transcription of the format. Bytes after the last word (stream padding) are
    ignored; so are a word's value padding bits.

    Parameters
    ----------
    cfg : HardwareConfig
    blob : bytes
        The stream, starting at the first word.
    n_words : int
        ``N``.

    Returns
    -------
    numpy.ndarray
        ``int64``, shape ``[N, K]``: the dense words, zeros filled back in.

    Raises
    ------
    ValueError
        The stream ends before ``n_words`` words.
    """
    K, wb = cfg.k, cfg.weight_bits
    out = np.zeros((n_words, K), dtype=np.int64)
    pos = 0
    for i in range(n_words):
        head = blob[pos:pos + cfg.bitmap_bytes]
        if len(head) < cfg.bitmap_bytes:
            raise ValueError(f"stream truncated in the bitmap of word {i} (byte {pos} of {len(blob)})")
        bitmap = int.from_bytes(head, "little")
        n = bin(bitmap).count("1")
        size = compressed_word_bytes(cfg, n)
        body = blob[pos + cfg.bitmap_bytes:pos + size]
        if len(body) < size - cfg.bitmap_bytes:
            raise ValueError(f"stream truncated in the values of word {i} (needs {size} bytes at "
                             f"byte {pos}, the stream has {len(blob)})")
        values = int.from_bytes(body, "little")
        for k in range(K):
            if (bitmap >> k) & 1:
                field = values & ((1 << wb) - 1)
                values >>= wb
                if field >= 1 << (wb - 1):
                    field -= 1 << wb
                out[i, k] = field
        pos += size
    return out


def dense_word_value(cfg: HardwareConfig, weights: Sequence[int]) -> int:
    """The dense weight-SRAM word as an integer: weight ``k`` at bits
    ``[k*weight_bits, (k+1)*weight_bits)``, two's complement.

    Parameters
    ----------
    cfg : HardwareConfig
    weights : sequence of int, length ``K``

    Returns
    -------
    int
        In ``[0, 2**(K*weight_bits))``.
    """
    ws = [int(w) for w in weights]
    if len(ws) != cfg.k:
        raise ValueError(f"a word holds K={cfg.k} weights, not {len(ws)}")
    wb = cfg.weight_bits
    lo, hi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    v = 0
    for k, w in enumerate(ws):
        if not lo <= w <= hi:
            raise ValueError(f"weight {w} at index {k} does not fit signed weight_bits={wb} "
                             f"[{lo}, {hi}]")
        v |= (w & ((1 << wb) - 1)) << (k * wb)
    return v
