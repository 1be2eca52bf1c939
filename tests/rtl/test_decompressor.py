"""Tests for rtl/decompressor.py: the Amaranth simulation against a deliberately naive golden
model (a compressor and decompressor written from the rtl.memfmt docstring), the cycle-exact
Python twin (reference_load), throughput, and Verilog conversion."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Fragment, Module, unsigned
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from rtl.config import HardwareConfig
from rtl.decompressor import Decompressor, buffer_bytes, load_cycles, reference_load
from rtl.memfmt import ParamRecord

#: ``busy`` falls at most this many cycles after the last DRAM word of a full-rate stream.
THROUGHPUT_SLACK = 8


# -- naive golden model (from the rtl.memfmt docstring) -------------------------------------------

def naive_compress_word(cfg: HardwareConfig, weights) -> bytes:
    """Bitmap (bit k of byte k//8 ... LSB first) then the nonzero values packed LSB first."""
    wb = cfg.weight_bits
    assert len(weights) == cfg.k
    bits = []                                   # a list of 0/1, LSB first
    for w in weights:
        bits.append(1 if w != 0 else 0)
    for w in weights:
        if w != 0:
            u = int(w) & ((1 << wb) - 1)
            bits.extend((u >> i) & 1 for i in range(wb))
    while len(bits) % 8:
        bits.append(0)
    return bytes(sum(bits[i + j] << j for j in range(8)) for i in range(0, len(bits), 8))


def naive_dense_word(cfg: HardwareConfig, weights) -> int:
    wb = cfg.weight_bits
    return sum((int(w) & ((1 << wb) - 1)) << (k * wb) for k, w in enumerate(weights))


def pad_stream(cfg: HardwareConfig, stream: bytes) -> list[int]:
    B = cfg.dram_bytes_per_cycle
    stream = stream + bytes(-len(stream) % B)
    return [int.from_bytes(stream[i:i + B], "little") for i in range(0, len(stream), B)]


def random_words(rng, cfg: HardwareConfig, n: int, sparsity: float):
    lo, hi = -(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1)
    w = rng.integers(lo, hi, size=(n, cfg.k))
    w[w == 0] = 1                                # nonzero unless pruned below
    w[rng.random((n, cfg.k)) < sparsity] = 0
    return w


class Load:
    """One LOAD command with its stream and the golden writes ``{(lane, addr): value}``."""

    def __init__(self, cfg, stream: bytes, *, count, dest=0, dram_addr=0, params=False,
                 expect=None, dram_len=None):
        self.words = pad_stream(cfg, stream)
        self.count, self.dest, self.dram_addr, self.params = count, dest, dram_addr, params
        self.dram_len = len(self.words) if dram_len is None else dram_len
        self.expect = expect

    @classmethod
    def weights(cls, cfg, mats, *, dest=0, dram_addr=0):
        """``mats``: integer array (lanes, count, K)."""
        lanes, count, _ = mats.shape
        stream = b"".join(naive_compress_word(cfg, mats[l, i])
                          for l in range(lanes) for i in range(count))
        tmask = (1 << max(cfg.wsram_addr_bits, cfg.param_addr_bits)) - 1
        expect = {(l, (dest + i) & tmask): naive_dense_word(cfg, mats[l, i])
                  for l in range(lanes) for i in range(count)}
        return cls(cfg, stream, count=count, dest=dest, dram_addr=dram_addr, expect=expect)

    @classmethod
    def records(cls, cfg, recs, *, dest=0, dram_addr=0):
        """``recs``: list (lanes) of lists (count) of ParamRecord."""
        count = len(recs[0])
        stream = b"".join(r.pack() for lane in recs for r in lane)
        expect = {(l, dest + i): int.from_bytes(recs[l][i].pack(), "little")
                  for l in range(len(recs)) for i in range(count)}
        return cls(cfg, stream, count=count, dest=dest, dram_addr=dram_addr, params=True,
                   expect=expect)


# -- DUT wrapper and testbench ------------------------------------------------------------------

class Harness(Elaboratable):
    """The decompressor with a DRAM model: an ``amaranth.lib.memory.Memory`` whose
    non-transparent synchronous read port drives ``dram_rd_*``."""

    def __init__(self, cfg: HardwareConfig, depth: int = 256):
        self.cfg = cfg
        self.dut = Decompressor(cfg)
        self.dram = Memory(shape=unsigned(cfg.dram_word_bits), depth=depth, init=[])

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.submodules.dram = self.dram
        rp = self.dram.read_port(domain="sync")
        m.d.comb += [
            rp.addr.eq(dut.dram_rd_addr),
            rp.en.eq(dut.dram_rd_en),
            dut.dram_rd_data.eq(rp.data),
        ]
        return m


def run_loads(cfg: HardwareConfig, loads, *, depth=256, idle=2, max_cycles=20000):
    """Run ``loads`` back to back in one simulation. Returns, per load, a dict with
    ``cycles`` (start to busy low), ``reads`` and ``writes`` [(cycle, lane, addr, value)]."""
    h = Harness(cfg, depth)
    dut = h.dut
    results = []

    async def tb(ctx):
        for ld in loads:
            assert ld.dram_addr + len(ld.words) <= depth
            for i, w in enumerate(ld.words):
                ctx.set(h.dram.data[ld.dram_addr + i], w)
            for _ in range(idle):
                await ctx.tick()
            assert not ctx.get(dut.busy)
            ctx.set(dut.start, 1)
            ctx.set(dut.params, int(ld.params))
            ctx.set(dut.dram_addr, ld.dram_addr)
            ctx.set(dut.dram_len, ld.dram_len)
            ctx.set(dut.count, ld.count)
            ctx.set(dut.dest, ld.dest)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycle, reads, writes = 1, [], []
            seen_busy = False
            while True:
                busy, ren, wen, pen = ctx.get(dut.busy), ctx.get(dut.dram_rd_en), \
                    ctx.get(dut.wr_wen), ctx.get(dut.wr_pen)
                assert not (wen and pen)
                if wen or pen:
                    assert busy, "writes only while busy"
                    val = ctx.get(dut.wr_pdata if pen else dut.wr_wdata)
                    if wen:  # the bitmap beside the dense word is the word's nonzero mask
                        wmask = (1 << cfg.weight_bits) - 1
                        assert ctx.get(dut.wr_wnz) == sum(
                            1 << k for k in range(cfg.k)
                            if (val >> (k * cfg.weight_bits)) & wmask)
                    writes.append((cycle, ctx.get(dut.wr_lane), ctx.get(dut.wr_addr), val))
                if ren:
                    assert busy
                    reads.append(cycle)
                if cycle == 1:
                    assert busy, "busy must rise in the cycle after start"
                    seen_busy = True
                if not busy:
                    break
                assert cycle < max_cycles, "decompressor hung"
                await ctx.tick()
                cycle += 1
            assert seen_busy
            results.append({"cycles": cycle, "reads": reads, "writes": writes})

    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return results


def check_load(cfg, ld: Load, res: dict, dram=None):
    """Golden data check (exact) and cycle-exact comparison with the Python twin."""
    got = {(lane, addr): val for _, lane, addr, val in res["writes"]}
    assert len(got) == len(res["writes"]), "a record was written twice"
    if ld.expect is not None:
        assert got == ld.expect
    # records go out in stream order: lane-major, one per cycle at most
    cycles = [c for c, *_ in res["writes"]]
    assert cycles == sorted(set(cycles))
    if dram is None:
        dram = [0] * ld.dram_addr + ld.words
    ref = reference_load(cfg, dram, dram_addr=ld.dram_addr, dram_len=ld.dram_len,
                         count=ld.count, dest=ld.dest, params=ld.params)
    assert res["writes"] == ref.writes
    assert res["cycles"] == ref.cycles
    assert res["reads"] == ref.read_cycles
    assert len(res["reads"]) == ref.dram_reads


def small_cfg(*, k=8, wb=8, B=1, lanes=3) -> HardwareConfig:
    return HardwareConfig.tiny().replace(lanes=lanes, k=k, weight_bits=wb,
                                         dram_bytes_per_cycle=B)


# -- parameters ---------------------------------------------------------------------------------

def test_rejects_non_config():
    with pytest.raises(TypeError, match="must be a HardwareConfig"):
        Decompressor("tiny")
    with pytest.raises(TypeError, match="must be a HardwareConfig"):
        Decompressor(HardwareConfig.tiny().to_dict())


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_signature_widths(preset):
    cfg = HardwareConfig.preset(preset)
    d = Decompressor(cfg)
    Fragment.get(d, None)                        # elaborates
    tgt = max(cfg.wsram_addr_bits, cfg.param_addr_bits)
    assert len(d.dram_addr) == cfg.dram_addr_bits
    assert len(d.dram_len) == cfg.dram_addr_bits + 1
    assert len(d.count) == tgt + 1
    assert len(d.dest) == tgt
    assert len(d.dram_rd_data) == cfg.dram_word_bits
    assert len(d.wr_lane) == cfg.lane_bits
    assert len(d.wr_addr) == tgt
    assert len(d.wr_wdata) == cfg.wword_bits
    assert len(d.wr_pdata) == 128
    assert d.buffer_bytes == buffer_bytes(cfg)
    assert d.buffer_bytes >= max(cfg.max_compressed_word_bytes, 16) + 2 * cfg.dram_bytes_per_cycle
    assert d.latency == 4


def test_naive_compressor_format():
    cfg = small_cfg(k=8, wb=4)
    # weights 0, -8, 0, 7, 0...: bitmap 0b1010, values -8 (0x8) then 7 -> byte 0x78
    assert naive_compress_word(cfg, [0, -8, 0, 7, 0, 0, 0, 0]) == bytes([0b1010, 0x78])
    assert naive_compress_word(cfg, [0, 0, 0, 0, 0, 0, 0, -1]) == bytes([0x80, 0x0F])
    assert naive_compress_word(cfg, [0] * 8) == bytes([0])
    cfg8 = small_cfg(k=8, wb=8)
    assert naive_compress_word(cfg8, [-128, 0, 0, 0, 0, 0, 0, 1]) == bytes([0x81, 0x80, 0x01])


# -- simulation ---------------------------------------------------------------------------------

CONFIGS = [(k, wb, B) for k in (8, 16) for wb in (4, 8) for B in (1, 2, 4, 8)]


@pytest.mark.parametrize("k,wb,B", CONFIGS, ids=[f"K{k}-w{wb}-B{B}" for k, wb, B in CONFIGS])
def test_random_matrices(k, wb, B):
    cfg = small_cfg(k=k, wb=wb, B=B)
    rng = np.random.default_rng(k * 100 + wb * 10 + B)
    loads = []
    addr = 0
    for i, sparsity in enumerate((0.0, 0.5, 0.9, 1.0)):
        count = 3
        mats = random_words(rng, cfg, cfg.lanes * count, sparsity).reshape(cfg.lanes, count, k)
        ld = Load.weights(cfg, mats, dest=5 * i, dram_addr=addr)
        addr += len(ld.words) + 1
        loads.append(ld)
    dram = [0] * 512
    for ld in loads:
        dram[ld.dram_addr:ld.dram_addr + len(ld.words)] = ld.words
    for ld, res in zip(loads, run_loads(cfg, loads, depth=512)):
        check_load(cfg, ld, res, dram)


@pytest.mark.parametrize("wb", [4, 8])
def test_extreme_values(wb):
    cfg = small_cfg(k=16, wb=wb, B=2, lanes=2)
    lo, hi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    rows = [
        [lo] * 16,                               # -8 / -128 everywhere
        [hi] * 16,
        [-1] * 16,                               # all ones
        [lo if k % 2 else 0 for k in range(16)],
        [0] * 15 + [lo],
        [lo] + [0] * 15,
        [hi, lo] * 8,
        [0] * 16,
    ]
    mats = np.array(rows).reshape(2, 4, 16)
    ld = Load.weights(cfg, mats, dest=3)
    (res,) = run_loads(cfg, [ld])
    check_load(cfg, ld, res)


def test_param_records_over_lanes():
    cfg = small_cfg(k=8, wb=8, B=4, lanes=3)
    rng = np.random.default_rng(7)
    recs = [[ParamRecord(bias=int(rng.integers(-2**31, 2**31)), mult=int(rng.integers(0, 2**31)),
                         shift=int(rng.integers(0, 64)), write=bool(rng.integers(0, 2)),
                         out_index=int(rng.integers(0, 2**16)))
             for _ in range(5)] for _ in range(3)]
    recs[0][0] = ParamRecord(bias=-2**31, mult=2**31 - 1, shift=63, write=True, out_index=65535)
    ld = Load.records(cfg, recs, dest=7)
    (res,) = run_loads(cfg, [ld])
    check_load(cfg, ld, res)
    # params at full rate: 16-byte records >= B, so N words in N + 4 cycles
    assert res["cycles"] == len(ld.words) + Decompressor.drain_cycles


def test_param_records_raw_bytes():
    """The decompressor passes the 16 bytes through untouched, whatever they hold."""
    cfg = small_cfg(k=16, wb=4, B=8, lanes=2)
    rng = np.random.default_rng(8)
    raw = [bytes(rng.integers(0, 256, 16, dtype=np.uint8)) for _ in range(6)]
    raw[0] = b"\xff" * 16
    ld = Load(cfg, b"".join(raw), count=3, dest=2, params=True,
              expect={(i // 3, 2 + i % 3): int.from_bytes(r, "little") for i, r in enumerate(raw)})
    (res,) = run_loads(cfg, [ld])
    check_load(cfg, ld, res)


def test_buffer_backpressure():
    """B = 8 > K/8 = 1: runs of 1-byte all-zero words (the parser is the bottleneck and the
    buffer fills up) mixed with 9-byte dense words."""
    cfg = small_cfg(k=8, wb=8, B=8, lanes=2)
    rng = np.random.default_rng(9)
    rows = []
    for _ in range(8):
        rows += [[0] * 8] * int(rng.integers(0, 20))
        rows += list(random_words(rng, cfg, int(rng.integers(1, 4)), 0.0))
    rows = rows[:len(rows) // 2 * 2]
    mats = np.array(rows).reshape(2, len(rows) // 2, 8)
    ld = Load.weights(cfg, mats)
    (res,) = run_loads(cfg, [ld])
    check_load(cfg, ld, res)
    # the flow control really throttled the reads
    assert len(res["reads"]) == len(ld.words)
    assert res["reads"] != list(range(1, len(ld.words) + 1))


def test_weights_then_params_then_weights():
    """Back-to-back commands: the buffer and counters restart cleanly."""
    cfg = small_cfg(k=16, wb=4, B=8, lanes=2)
    rng = np.random.default_rng(3)
    a = Load.weights(cfg, random_words(rng, cfg, 6, 0.7).reshape(2, 3, 16), dram_addr=0)
    recs = [[ParamRecord(i, i, i, True, i) for i in range(2)] for _ in range(2)]
    b = Load.records(cfg, recs, dram_addr=len(a.words), dest=1)
    c = Load.weights(cfg, random_words(rng, cfg, 2, 0.0).reshape(2, 1, 16),
                     dram_addr=len(a.words) + len(b.words), dest=9)
    dram = a.words + b.words + c.words
    for ld, res in zip((a, b, c), run_loads(cfg, [a, b, c], idle=0)):
        check_load(cfg, ld, res, dram)


def test_count_zero_finishes_at_once():
    cfg = small_cfg()
    ld = Load(cfg, b"\xff" * 4, count=0)
    (res,) = run_loads(cfg, [ld])
    assert res == {"cycles": 2, "reads": [], "writes": []}


def test_short_stream_stops_without_hanging():
    """dram_len too small: the complete records are written, then busy falls."""
    cfg = small_cfg(k=8, wb=8, B=2, lanes=2)
    mats = np.full((2, 3, 8), 5)                 # 9-byte words
    ld = Load.weights(cfg, mats)
    ld.dram_len = 10                             # 20 bytes: two whole words
    (res,) = run_loads(cfg, [ld])
    ref = reference_load(cfg, ld.words, dram_addr=0, dram_len=10, count=3, dest=0)
    assert res["writes"] == ref.writes and res["cycles"] == ref.cycles
    assert [(lane, addr) for _, lane, addr, _ in res["writes"]] == [(0, 0), (0, 1)]
    assert res["reads"] == ref.read_cycles and len(res["reads"]) == 10


@settings(max_examples=25, deadline=None)
@given(cfgi=st.sampled_from([(8, 8, 1), (8, 4, 2), (8, 8, 8), (16, 4, 4), (16, 8, 8)]),
       lanes=st.integers(1, 3), count=st.integers(1, 4), dest=st.integers(0, 63),
       sparsity=st.sampled_from([0.0, 0.3, 0.6, 0.9, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_property_random_loads(cfgi, lanes, count, dest, sparsity, seed):
    k, wb, B = cfgi
    cfg = small_cfg(k=k, wb=wb, B=B, lanes=lanes)
    rng = np.random.default_rng(seed)
    rows = [random_words(rng, cfg, 1, float(rng.choice([sparsity, 1.0])))[0]
            for _ in range(lanes * count)]
    mats = np.array(rows).reshape(lanes, count, k)
    ld = Load.weights(cfg, mats, dest=dest, dram_addr=int(rng.integers(0, 8)))
    (res,) = run_loads(cfg, [ld], idle=0)
    check_load(cfg, ld, res)


# -- throughput ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k,wb,B,sparsity", [
    (16, 4, 2, 0.5),                             # B = K/8
    (16, 8, 1, 1.0),                             # all-zero words: 2 bytes, B = 1
    (64, 4, 8, 0.9),                             # the default config's K, wb, B
    (64, 4, 8, 1.0),                             # all-zero words: exactly B bytes each
    (64, 4, 4, 0.0),
])
def test_throughput_full_rate(k, wb, B, sparsity):
    cfg = small_cfg(k=k, wb=wb, B=B, lanes=2)
    assert cfg.decompressor_keeps_up
    rng = np.random.default_rng(11)
    count = 40
    mats = random_words(rng, cfg, 2 * count, sparsity).reshape(2, count, k)
    ld = Load.weights(cfg, mats)
    N = len(ld.words)
    assert N >= 40
    (res,) = run_loads(cfg, [ld], depth=1024)
    check_load(cfg, ld, res)
    assert res["reads"] == list(range(1, N + 1))           # a read in every cycle 1..N
    assert res["cycles"] <= N + THROUGHPUT_SLACK
    assert res["cycles"] == N + Decompressor.drain_cycles     # measured: exactly N + 4
    assert N / res["cycles"] >= 0.9


def test_throughput_parser_bound():
    """B > K/8 with all-zero words (1 byte each, B = 4): one record per cycle."""
    cfg = small_cfg(k=8, wb=8, B=4, lanes=2)
    assert not cfg.decompressor_keeps_up
    count = 40
    ld = Load.weights(cfg, np.zeros((2, count, 8), dtype=int))
    (res,) = run_loads(cfg, [ld])
    check_load(cfg, ld, res)
    assert res["cycles"] <= 2 * count + THROUGHPUT_SLACK


def test_load_cycles_helper():
    cfg = small_cfg(k=16, wb=4, B=2, lanes=2)
    stream = b"".join(naive_compress_word(cfg, [1] * 16) for _ in range(6))
    assert len(stream) % 2 == 0
    assert load_cycles(cfg, stream, count=3) == len(stream) // 2 + 4
    with pytest.raises(ValueError, match="whole 2-byte DRAM words"):
        load_cycles(cfg, b"\0", count=1)


# -- cross-check with the real compiler, when it exists ------------------------------------------

@pytest.mark.parametrize("wb", [4, 8])
def test_against_compiler_compress(wb):
    """The real compiler's stream equals the naive one and the RTL rebuilds it."""
    compress = pytest.importorskip("compiler.compress")
    if not hasattr(compress, "compress_words"):
        pytest.skip("compiler.compress.compress_words not written yet")
    cfg = small_cfg(k=16, wb=wb, B=4, lanes=2)
    rng = np.random.default_rng(5)
    rows = np.concatenate([random_words(rng, cfg, 3, s) for s in (0.0, 0.5, 0.9, 1.0)])
    ours = b"".join(naive_compress_word(cfg, row) for row in rows)
    theirs = bytes(compress.compress_words(cfg, rows))
    assert theirs == ours
    ld = Load.weights(cfg, rows.reshape(2, 6, 16), dest=4)
    ld.words = pad_stream(cfg, theirs)
    (res,) = run_loads(cfg, [ld])
    check_load(cfg, ld, res)


# -- Verilog ------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_converts_to_verilog(preset):
    cfg = HardwareConfig.preset(preset)
    text = verilog.convert(Decompressor(cfg), name="decompressor")
    assert "module decompressor" in text
