"""Hand-built memory images for the real accelerator, independent of ``compiler/``.

A deliberately naive second implementation of the memory format (``rtl.memfmt``): rows go to
lanes round-robin, every weight word is compressed (bitmap + packed nonzeros), and the golden
output is computed with the arithmetic written out in ``rtl.memfmt``'s docstring.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import MemoryImage, ParamRecord


def _ceil(a, b):
    return -(-a // b)


def compress_word(cfg: HardwareConfig, weights: list[int]) -> bytes:
    wb = cfg.weight_bits
    bitmap = sum(1 << k for k, v in enumerate(weights) if v)
    packed, n = 0, 0
    for v in weights:
        if v:
            packed |= (v & ((1 << wb) - 1)) << n
            n += wb
    return bitmap.to_bytes(cfg.k // 8, "little") + packed.to_bytes(_ceil(n, 8), "little")


@dataclass
class Layer:
    weight: list[list[int]]   # [R][C]
    bias: list[int]
    mult: list[int]
    shift: list[int]

    @property
    def rows(self):
        return len(self.weight)

    @property
    def cols(self):
        return len(self.weight[0])


@dataclass
class HandImage:
    """What :func:`sim.host.run_matvec` needs (``image``, ``in_base``, ``out_base``) plus the
    layer and the sizes."""

    image: MemoryImage
    in_base: int
    out_base: int
    n_in: int
    n_out: int
    layer: Layer


def random_layer(cfg: HardwareConfig, rows: int, cols: int, *, density=0.5, seed=0) -> Layer:
    rnd = random.Random(seed)
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    w = [[rnd.randint(lo, hi) if rnd.random() < density else 0 for _ in range(cols)]
         for _ in range(rows)]
    return Layer(w, [rnd.randint(-2000, 2000) for _ in range(rows)],
                 [rnd.randint(1 << 19, 1 << 21) for _ in range(rows)],
                 [rnd.randint(27, 30) for _ in range(rows)])


def random_input(cols: int, *, zero_fraction=0.3, seed=1) -> list[int]:
    rnd = random.Random(seed)
    return [0 if rnd.random() < zero_fraction else rnd.randint(-128, 127) for _ in range(cols)]


def build_image(cfg: HardwareConfig, layer: Layer, *, in_base: int = 0) -> HandImage:
    K, L, B = cfg.k, cfg.lanes, cfg.dram_bytes_per_cycle
    R, C = layer.rows, layer.cols
    n_words = _ceil(C, K)
    slots = _ceil(R, L)
    out_base = in_base + n_words

    def row_of(lane, slot):
        r = slot * L + lane
        return r if r < R else None

    stream = bytearray()
    for lane in range(L):
        for slot in range(slots):
            r = row_of(lane, slot)
            row = (layer.weight[r] if r is not None else [0] * C) + [0] * (n_words * K - C)
            for j in range(n_words):
                stream += compress_word(cfg, row[j * K:(j + 1) * K])
    stream += bytes(-len(stream) % B)
    w_len = len(stream) // B
    params = bytearray()
    for lane in range(L):
        for slot in range(slots):
            r = row_of(lane, slot)
            rec = (ParamRecord(layer.bias[r], layer.mult[r], layer.shift[r], True, r)
                   if r is not None else ParamRecord(0, 0, 0, False, 0))
            params += rec.pack()
    params += bytes(-len(params) % B)
    p_len = len(params) // B
    dram = bytes(stream + params)
    mv = dict(w_base=0, p_base=0, n_rows=slots, n_words=n_words, in_base=in_base,
              out_base=out_base)
    prog = [
        isa.load(cfg, dram_addr=0, dram_len=w_len, count=slots * n_words, dest=0),
        isa.load(cfg, dram_addr=w_len, dram_len=p_len, count=slots, dest=0, params=True),
        isa.end(cfg),
        isa.matvec(cfg, **mv), isa.end(cfg),
        isa.matvec(cfg, dense=True, **mv), isa.end(cfg),
    ]
    manifest = {"programs": {"load": {"pc": 0, "length": 3}, "matvec": {"pc": 3, "length": 2},
                             "matvec_dense": {"pc": 5, "length": 2}}}
    image = MemoryImage(cfg, dram, isa.program_bytes(cfg, prog), manifest)
    return HandImage(image, in_base, out_base, n_words, _ceil(R, K), layer)


def pack(cfg: HardwareConfig, x: list[int]) -> list[int]:
    K = cfg.k
    x = list(x) + [0] * (-len(x) % K)
    return [sum((v & 0xFF) << (8 * k) for k, v in enumerate(x[i:i + K]))
            for i in range(0, len(x), K)]


def unpack(cfg: HardwareConfig, words: list[int], n: int) -> list[int]:
    out = []
    for w in words:
        for k in range(cfg.k):
            b = (w >> (8 * k)) & 0xFF
            out.append(b - 256 if b >= 128 else b)
    return out[:n]


def reference(cfg: HardwareConfig, layer: Layer, x: list[int]) -> list[int]:
    """``rtl.memfmt``'s arithmetic, written out."""
    mod = 1 << cfg.acc_bits
    out = []
    for r in range(layer.rows):
        acc = sum(w * v for w, v in zip(layer.weight[r], x))
        t = (acc + layer.bias[r]) % mod
        if t >= mod // 2:
            t -= mod
        p = t * layer.mult[r]
        s = layer.shift[r]
        y = (p + (1 << (s - 1))) >> s if s > 0 else p
        out.append(max(-128, min(127, y)))
    return out
