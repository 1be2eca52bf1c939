"""The whole accelerator in the Amaranth simulator: compiled layers, bit-exact against
``model.quant.int_matvec``, with the counters checked against what the layer implies."""

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from compiler.matvec import compile_matvec, expected_counts
from model.quant import QuantLinear, int_matvec, random_input, random_layer
from rtl import isa
from rtl.config import HardwareConfig
from rtl.top import COUNTERS, Accelerator

TINY = HardwareConfig.tiny()


def _nonzero_bitmap(cfg, word):
    """The activation nonzero bitmap of ``word`` (what the host port writes beside it)."""
    mask = (1 << cfg.act_bits) - 1
    return sum(1 << k for k in range(cfg.k) if (word >> (k * cfg.act_bits)) & mask)


def run_top(cfg, cm, x, programs=("load", "matvec", "matvec_dense")):
    """Backdoor-load the image, write the input, run the programs; return outputs per program
    (read after each), cycles and counter deltas per program."""
    top = Accelerator(cfg)
    image = cm.image
    out = {}

    async def counters(ctx):
        return {n: ctx.get(getattr(top, f"cnt_{n}")) for n in COUNTERS}

    async def tb(ctx):
        for i, w in enumerate(image.dram_words):
            ctx.set(top.dram_mem.data[i], w)
        for i, w in enumerate(image.program_words):
            ctx.set(top.imem.data[i], w)
        for i, w in enumerate(cm.pack_input(x)):
            ctx.set(top.act_mem.data[cm.in_base + i], w)
            ctx.set(top.act_nz_mem.data[cm.in_base + i], _nonzero_bitmap(cfg, w))
        for name in programs:
            before = await counters(ctx)
            ctx.set(top.start_pc, image.entry(name))
            ctx.set(top.start, 1)
            await ctx.tick()
            ctx.set(top.start, 0)
            await ctx.tick().until(top.done)
            after = await counters(ctx)
            words = [ctx.get(top.act_mem.data[cm.out_base + i]) for i in range(cm.out_words)]
            out[name] = {"y": cm.unpack_output(words),
                         "counters": {n: after[n] - before[n] for n in COUNTERS},
                         "fault": ctx.get(top.fault)}

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out


def check_layer(cfg, layer, x):
    cm = compile_matvec(cfg, layer)
    res = run_top(cfg, cm, x)
    want = int_matvec(layer, x, acc_bits=cfg.acc_bits).numpy()
    for name in ("matvec", "matvec_dense"):
        np.testing.assert_array_equal(res[name]["y"], want)
        assert not res[name]["fault"]
    exp = expected_counts(cfg, layer, x)
    c = res["matvec"]["counters"]
    assert c["macs"] == exp["nonzero_products"]
    assert c["skip_zero_w"] == exp["zero_weight"]
    assert c["skip_zero_a"] == exp["zero_activation"]
    assert c["wsram_reads"] == cfg.lanes * cm.n_slots * cm.n_words
    d = res["matvec_dense"]["counters"]
    assert d["macs"] == cfg.lanes * cm.n_slots * cm.n_words * cfg.k
    assert d["skip_zero_w"] == d["skip_zero_a"] == 0
    ld = res["load"]["counters"]
    assert ld["dram_bytes"] == len(cm.image.dram)
    return cm, res


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("w_bits", [4, 8])
def test_random_layers_bit_exact(sparsity, w_bits):
    cfg = TINY.replace(weight_bits=w_bits)
    layer = random_layer(11, 21, sparsity=sparsity, w_bits=w_bits, seed=3)
    x = random_input(21, seed=4, zero_fraction=0.2)
    check_layer(cfg, layer, x)


def test_extreme_values_saturate_both_ways():
    cfg = TINY
    R, C = 4, 16
    w = torch.full((R, C), -128, dtype=torch.int64)
    w[1] = 127
    layer = QuantLinear(weight=w, bias=torch.tensor([0, 0, 7, -7]),
                        mult=torch.tensor([(1 << 31) - 1, (1 << 31) - 1, 1 << 30, 1 << 30]),
                        shift=torch.tensor([0, 0, 40, 40]), w_bits=8)
    x = torch.full((C,), -128, dtype=torch.int64)
    _, res = check_layer(cfg, layer, x)
    assert list(res["matvec"]["y"][:2]) == [127, -128]


def test_sparse_is_faster_than_dense():
    cfg = TINY.replace(weight_bits=4)
    layer = random_layer(16, 64, sparsity=0.8, w_bits=4, seed=1)
    x = random_input(64, seed=2)
    _, res = check_layer(cfg, layer, x)
    assert res["matvec"]["counters"]["cycles"] * 2 < res["matvec_dense"]["counters"]["cycles"]


def test_unknown_opcode_faults():
    cfg = TINY
    layer = random_layer(2, 8, sparsity=0.0, w_bits=8, seed=0)
    cm = compile_matvec(cfg, layer)
    words = cm.image.program_words
    bad = cm.image.entry("matvec")
    words[bad] = 0xF  # opcode 15 is not defined
    cm.image.program = isa.program_bytes(cfg, words)
    res = run_top(cfg, cm, random_input(8, seed=0), programs=("matvec",))
    assert res["matvec"]["fault"] == 1


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 9), st.integers(1, 30), st.floats(0, 1), st.sampled_from([4, 8]),
       st.floats(0, 1), st.integers(0, 1000))
def test_property_rtl_equals_reference(rows, cols, sparsity, w_bits, zf, seed):
    cfg = TINY.replace(weight_bits=w_bits)
    layer = random_layer(rows, cols, sparsity=sparsity, w_bits=w_bits, seed=seed)
    x = random_input(cols, seed=seed + 1, zero_fraction=zf)
    check_layer(cfg, layer, x)
