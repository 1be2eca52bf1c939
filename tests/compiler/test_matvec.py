"""Tests of compiler/matvec.py: image contents decode back to the layer, programs decode,
rows are balanced, limits raise CompileError, and a naive interpreter of the ISA semantics run
on the image reproduces model.quant.int_matvec exactly."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_equal

from compiler.compress import decompress_stream
from compiler.matvec import (CompileError, assign_rows, compile_matvec, expected_counts,
                             pack_input, row_costs, unpack_output)
from model.quant import QuantLinear, int_matvec, random_input, random_layer, requantize
from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import MemoryImage, ParamRecord

TINY = HardwareConfig.tiny()
DEFAULT = HardwareConfig.default()


def ceil_div(a, b):
    return -(-a // b)


def decode_image(c):
    """Pull the weight and parameter streams out of a compiled image, via the LOAD program."""
    cfg = c.image.config
    B = cfg.dram_bytes_per_cycle
    words = c.image.program_words
    pc = c.image.entry("load")
    lw, lp, end = (isa.decode(cfg, w) for w in words[pc:pc + 3])
    assert lw["op"] == isa.Op.LOAD and lw["flags"] == 0
    assert lp["op"] == isa.Op.LOAD and lp["flags"] == isa.LoadFlags.PARAMS
    assert end["op"] == isa.Op.END
    L = cfg.lanes
    wblob = c.image.dram[lw["dram_addr"] * B:(lw["dram_addr"] + lw["dram_len"]) * B]
    dense = decompress_stream(cfg, wblob, L * lw["count"]).reshape(L, lw["count"], cfg.k)
    pblob = c.image.dram[lp["dram_addr"] * B:(lp["dram_addr"] + lp["dram_len"]) * B]
    recs = [[ParamRecord.unpack(pblob[(lane * lp["count"] + i) * 16:][:16])
             for i in range(lp["count"])] for lane in range(L)]
    return lw, lp, dense, recs


def interpret(c, x, program="matvec"):
    """Naive ISA interpreter: LOAD into per-lane SRAMs, then MATVEC as rtl/isa.py describes."""
    cfg = c.image.config
    K = cfg.k
    _, _, wsram, psram = decode_image(c)
    act = {}
    for i, w in enumerate(pack_input(cfg, x)):
        act[c.in_base + i] = w
    instr = isa.decode(cfg, c.image.program_words[c.image.entry(program)])
    assert instr["op"] == isa.Op.MATVEC
    n_words = instr["n_words"]
    xin = unpack_output(cfg, [act[instr["in_base"] + j] for j in range(n_words)], n_words * K)
    out = {}
    for lane in range(cfg.lanes):
        for i in range(instr["n_rows"]):
            w = wsram[lane, instr["w_base"] + i * n_words:instr["w_base"] + (i + 1) * n_words]
            acc = int(np.dot(w.reshape(-1), xin))
            rec = psram[lane][instr["p_base"] + i]
            if rec.write:
                y = requantize(torch.tensor([acc]), rec.bias, rec.mult, rec.shift,
                               acc_bits=cfg.acc_bits, out_bits=cfg.act_bits).item()
                elem = instr["out_base"] * K + rec.out_index
                assert elem not in out, "two slots write the same output"
                out[elem] = y
    base = c.out_base * K
    assert sorted(out) == list(range(base, base + c.rows))
    return np.array([out[base + r] for r in range(c.rows)])


# -- placement ------------------------------------------------------------------------------

def check_placement(cfg, p, R):
    S = ceil_div(R, cfg.lanes)
    assert p.lanes == cfg.lanes and p.n_slots == S
    assert all(len(s) == S for s in p.slots)
    flat = [r for s in p.slots for r in s]
    assert sorted(r for r in flat if r >= 0) == list(range(R))
    assert flat.count(-1) == cfg.lanes * S - R


@pytest.mark.parametrize("R", [1, 2, 13, 64])
def test_assign_rows_places_every_row_once(R):
    layer = random_layer(R, 20, sparsity=0.6, w_bits=8, seed=R)
    p = assign_rows(TINY, layer.weight)
    check_placement(TINY, p, R)
    cost = row_costs(TINY, layer.weight)
    n_words = ceil_div(20, TINY.k)
    for lane, rows in enumerate(p.slots):
        assert p.lane_cost[lane] == sum(int(cost[r]) if r >= 0 else n_words for r in rows)
        assert p.lane_nnz[lane] == sum(int(layer.weight[r].count_nonzero()) for r in rows if r >= 0)


def test_row_cost_model():
    cfg = TINY                                      # K=8, M=2
    w = np.zeros((1, 24), dtype=np.int64)           # 3 words: nnz 0, 5, 8 -> 1 + 3 + 4
    w[0, 8:13] = 1
    w[0, 16:24] = -1
    assert_equal(row_costs(cfg, w).tolist(), [8])


def test_balancing_quality_default():
    layer = random_layer(1024, 1024, sparsity=0.8, w_bits=4, seed=0)
    p = assign_rows(DEFAULT, layer.weight)
    check_placement(DEFAULT, p, 1024)
    assert p.balance <= 1.02
    naive = np.array(row_costs(DEFAULT, layer.weight)).reshape(16, 64).sum(axis=1)
    assert p.balance <= naive.max() / naive.mean()


# -- compilation ----------------------------------------------------------------------------

@pytest.mark.parametrize("cfg,R,C,wb", [(TINY, 13, 20, 8), (TINY, 4, 8, 8), (TINY, 1, 3, 8),
                                        (TINY.replace(weight_bits=4), 7, 17, 4),
                                        (DEFAULT, 70, 200, 4)])
def test_streams_decode_back(cfg, R, C, wb):
    layer = random_layer(R, C, sparsity=0.5, w_bits=wb, seed=R * C)
    c = compile_matvec(cfg, layer, dram_base=3)
    S, n_words, K, L = ceil_div(R, cfg.lanes), ceil_div(C, cfg.k), cfg.k, cfg.lanes
    B = cfg.dram_bytes_per_cycle
    assert (c.n_slots, c.n_words, c.rows, c.cols) == (S, n_words, R, C)
    lw, lp, dense, recs = decode_image(c)
    assert (lw["dram_addr"], lw["count"], lw["dest"]) == (3, S * n_words, 0)
    assert (lp["dram_addr"], lp["count"], lp["dest"]) == (3 + lw["dram_len"], S, 0)
    assert lw["dram_len"] == c.stats["weight_dram_words"] == ceil_div(c.stats["weight_stream_bytes"], B)
    assert lp["dram_len"] == c.stats["param_dram_words"] == ceil_div(16 * L * S, B)
    assert len(c.image.dram) == (3 + lw["dram_len"] + lp["dram_len"]) * B
    assert c.image.dram[:3 * B] == bytes(3 * B)
    padded = np.zeros((R, n_words * K), dtype=np.int64)
    padded[:, :C] = layer.weight.numpy()
    for lane, rows in enumerate(c.placement.slots):
        for i, r in enumerate(rows):
            got = dense[lane, i * n_words:(i + 1) * n_words].reshape(-1)
            rec = recs[lane][i]
            if r < 0:
                assert not got.any()
                assert rec == ParamRecord(0, 0, 0, False, 0)
            else:
                assert_equal(got, padded[r])
                assert rec == ParamRecord(int(layer.bias[r]), int(layer.mult[r]),
                                          int(layer.shift[r]), True, r)
    assert c.stats["nnz"] == layer.nnz
    assert c.stats["compressed_bytes"] == c.stats["weight_stream_bytes"]
    assert c.stats["dense_bytes"] == ceil_div(R * C * wb, 8)
    assert c.stats["ideal_load_cycles"] == c.stats["weight_stream_bytes"] / B
    assert c.stats["lane_cost"] == c.placement.lane_cost


def test_programs_decode():
    layer = random_layer(13, 20, sparsity=0.5, w_bits=8, seed=1)
    c = compile_matvec(TINY, layer, in_base=2)
    progs = c.image.manifest["programs"]
    assert progs == {"load": {"pc": 0, "length": 3}, "load_weights": {"pc": 3, "length": 2},
                     "load_params": {"pc": 5, "length": 2}, "matvec": {"pc": 7, "length": 2},
                     "matvec_dense": {"pc": 9, "length": 2}}
    words = c.image.program_words
    assert len(words) == 11
    assert words[3] == words[0] and words[5] == words[1]
    for name, dense in (("matvec", 0), ("matvec_dense", isa.MatvecFlags.DENSE)):
        mv, end = (isa.decode(TINY, w) for w in words[progs[name]["pc"]:][:2])
        assert mv == {"op": isa.Op.MATVEC, "flags": dense, "w_base": 0, "p_base": 0,
                      "n_rows": 7, "n_words": 3, "in_base": 2, "out_base": 5}
        assert end["op"] == isa.Op.END
    layer_man = c.image.manifest["layers"][0]
    assert {k: layer_man[k] for k in ("name", "rows", "cols", "w_bits", "n_slots", "n_words",
                                      "in_base", "out_base")} == \
        {"name": "fc", "rows": 13, "cols": 20, "w_bits": 8, "n_slots": 7, "n_words": 3,
         "in_base": 2, "out_base": 5}
    assert layer_man["placement"] == c.placement.slots


def test_image_round_trip():
    layer = random_layer(13, 20, sparsity=0.5, w_bits=8, seed=1)
    c = compile_matvec(TINY, layer)
    img = MemoryImage.from_bytes(c.image.to_bytes(), expect=TINY)
    assert img.dram == c.image.dram and img.program == c.image.program
    assert img.manifest == c.image.manifest


@pytest.mark.parametrize("cfg,R,C,sparsity,zf", [
    (TINY, 13, 20, 0.5, 0.3), (TINY, 16, 16, 0.0, 0.0), (TINY, 5, 9, 1.0, 0.5),
    (TINY.replace(weight_bits=4, m=1), 9, 30, 0.7, 0.0),
    (DEFAULT, 100, 150, 0.8, 0.5),
])
def test_interpreted_image_matches_int_matvec(cfg, R, C, sparsity, zf):
    layer = random_layer(R, C, sparsity=sparsity, w_bits=cfg.weight_bits, seed=7)
    c = compile_matvec(cfg, layer)
    for seed in range(3):
        x = random_input(C, seed=seed, zero_fraction=zf)
        x[0] = -128
        want = int_matvec(layer, x).numpy()
        assert_equal(interpret(c, x), want)
        assert_equal(interpret(c, x, "matvec_dense"), want)


# -- errors -----------------------------------------------------------------------------------

def test_weight_bits_mismatch():
    layer = random_layer(4, 8, sparsity=0.0, w_bits=4, seed=0)
    with pytest.raises(CompileError, match="use a config with weight_bits=4"):
        compile_matvec(TINY, layer)


def test_too_big_for_weight_sram():
    layer = random_layer(40, 64, sparsity=0.5, w_bits=8, seed=0)   # 20 slots x 8 words = 160 > 64
    with pytest.raises(CompileError, match=r"weight SRAM.*HardwareConfig.wsram_depth is 64.*"
                                           r"wsram_depth >= 256"):
        compile_matvec(TINY, layer)


def test_too_many_rows_for_param_memory():
    layer = random_layer(80, 8, sparsity=0.5, w_bits=8, seed=0)    # 40 slots > 32
    with pytest.raises(CompileError, match=r"param_depth is 32.*param_depth >= 64"):
        compile_matvec(TINY.replace(act_depth=64), layer)


def test_activation_sram_limits():
    layer = random_layer(4, 8, sparsity=0.5, w_bits=8, seed=0)
    with pytest.raises(CompileError, match="input.*act_depth"):
        compile_matvec(TINY, layer, in_base=16)
    with pytest.raises(CompileError, match="output.*act_depth"):
        compile_matvec(TINY, layer, out_base=16)
    with pytest.raises(CompileError, match="overlap"):
        compile_matvec(TINY, layer, in_base=3, out_base=3)


def test_dram_limit():
    layer = random_layer(4, 8, sparsity=0.5, w_bits=8, seed=0)
    with pytest.raises(CompileError, match="DRAM.*dram_depth"):
        compile_matvec(TINY, layer, dram_base=1020)


def test_out_index_limit():
    R = (1 << 16) + 1
    z = torch.zeros(R, dtype=torch.int64)
    layer = QuantLinear(torch.ones(R, 1, dtype=torch.int64), z, z, z, 4)
    with pytest.raises(CompileError, match="out_index"):
        compile_matvec(DEFAULT, layer)


# -- activation packing and expected counters -------------------------------------------------

def test_pack_unpack():
    assert pack_input(TINY, [1, -1]) == [0x01 | 0xFF << 8]
    assert pack_input(TINY, list(range(-128, -119))) == [
        int.from_bytes(bytes(range(0x80, 0x88)), "little"), 0x88]
    x = random_input(150, seed=0)
    words = pack_input(DEFAULT, x)
    assert len(words) == 3 and all(0 <= w < 1 << DEFAULT.aword_bits for w in words)
    assert_equal(unpack_output(DEFAULT, words, 150), x.numpy())
    with pytest.raises(ValueError, match=r"x\[1\] = 200"):
        pack_input(TINY, [0, 200])


def test_expected_counts_vs_loops():
    cfg = TINY
    layer = random_layer(13, 20, sparsity=0.6, w_bits=8, seed=2)
    x = random_input(20, seed=3, zero_fraction=0.4)
    got = expected_counts(cfg, layer, x)
    L, S, n_words = cfg.lanes, ceil_div(13, cfg.lanes), ceil_div(20, cfg.k)
    nzp = zw = za = 0
    for r in range(L * S):
        for c in range(n_words * cfg.k):
            w = int(layer.weight[r, c]) if r < 13 and c < 20 else 0
            a = int(x[c]) if c < 20 else 0
            if w == 0:
                zw += 1
            elif a == 0:
                za += 1
            else:
                nzp += 1
    assert (got["nonzero_products"], got["zero_weight"], got["zero_activation"]) == (nzp, zw, za)
    assert got["total_pairs"] == L * S * n_words * cfg.k
    assert got["ideal_cycles"] == nzp / (cfg.lanes * cfg.m)
    assert sum(got["lane_products"]) == nzp
