"""Tests of sim/functional.py: every instruction against the integer formulas of model/intref.py
on random operands, LOAD against rtl.decompressor.reference_load, MATVEC and the matvec host
routine against model.quant, the cycle estimate against the Amaranth simulation, error paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_equal

from compiler.compress import compress_words
from compiler.matvec import compile_matvec, expected_counts, pack_input, unpack_output
from model.intref import SIGMOID_LUT, TANH_LUT, lstm_cell, lut_lookup, rshr
from model.quant import int_matvec, random_input, random_layer
from rtl import isa
from rtl.config import HardwareConfig
from rtl.decompressor import reference_load
from sim import backends, host
from sim.driver import DriverError
from sim.functional import (COUNTERS, FunctionalBackend, FunctionalError, decode_weight_stream)

#: The tiny configuration with room for vector operands and programs.
CFG = HardwareConfig.tiny().replace(act_depth=64, imem_depth=64, dram_depth=4096)
K = CFG.k

int8s = st.integers(-128, 127)


def run(cfg, routine, **options):
    """Run ``routine(driver)`` on a fresh functional backend; returns (result, backend)."""
    be = FunctionalBackend(cfg, **options)
    return be.run(routine), be


def words_of(values) -> list[int]:
    return pack_input(CFG, np.asarray(values, dtype=np.int64))


def values_of(words, n=None) -> np.ndarray:
    return unpack_output(CFG, words, len(words) * K if n is None else n)


def lut_dram(cfg, tables) -> list[int]:
    """The two 256-entry tables as DRAM words (LUT rows of 16 bytes)."""
    raw = b"".join(np.asarray(t, dtype=np.int64).astype(np.int8).tobytes() for t in tables)
    B = cfg.dram_bytes_per_cycle
    return [int.from_bytes(raw[i:i + B], "little") for i in range(0, len(raw), B)]


def vec(n_words, seed):
    g = np.random.default_rng(seed)
    return g.integers(-128, 128, n_words * K)


async def _exec(driver, writes, instrs, reads, arg=0, dram=None):
    if dram is not None:
        await driver.write_dram(dram)
    for base, vals in writes:
        await driver.write_act(base, words_of(vals))
    await driver.write_imem(list(instrs) + [isa.end(driver.cfg)])
    cycles = await driver.run(0, arg)
    out = [values_of(await driver.read_act(base, n)) for base, n in reads]
    return {"cycles": cycles, "out": out, "counters": await driver.counters()}


def execute(writes, instrs, reads, arg=0, dram=None, cfg=CFG, **options):
    return run(cfg, lambda d: _exec(d, writes, instrs, reads, arg, dram), **options)


# -- vector instructions against model.intref -------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), inplace=st.booleans())
def test_vadd(n, seed, inplace):
    a, b = vec(n, seed), vec(n, seed + 1)
    dst = 0 if inplace else 20
    res, _ = execute([(0, a), (10, b)], [isa.vadd(CFG, dst=dst, a=0, b=10, n=n)], [(dst, n)])
    want = (torch.tensor(a) + torch.tensor(b)).clamp(-128, 127).numpy()
    assert_equal(res["out"][0], want)
    assert res["cycles"] == 1 + (2 + 2 * n + 3) + 2
    assert res["counters"]["instr_vadd"] == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), seed=st.integers(0, 2**32 - 1), shift=st.integers(0, 15))
def test_vmul(n, seed, shift):
    a, b = vec(n, seed), vec(n, seed + 1)
    res, _ = execute([(0, a), (8, b)], [isa.vmul(CFG, dst=16, a=0, b=8, n=n, shift=shift)],
                     [(16, n)])
    p = torch.tensor(a) * torch.tensor(b)
    want = (rshr(p, shift) if shift else p).clamp(-128, 127).numpy()
    assert_equal(res["out"][0], want)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), table=st.sampled_from([0, 1]),
       random_tables=st.booleans())
def test_lut(n, seed, table, random_tables):
    g = np.random.default_rng(seed)
    tables = ([g.integers(-128, 128, 256), g.integers(-128, 128, 256)] if random_tables
              else [SIGMOID_LUT.numpy(), TANH_LUT.numpy()])
    dram = lut_dram(CFG, tables)
    a = vec(n, seed + 2)
    instrs = [isa.load(CFG, dram_addr=0, dram_len=len(dram), count=isa.LUT_ROWS, dest=0,
                       lut=True),
              isa.lut(CFG, dst=3, a=3, n=n, table=table)]
    res, _ = execute([(3, a)], instrs, [(3, n)], dram=dram)
    want = lut_lookup(torch.tensor(tables[table]), torch.tensor(a)).numpy()
    assert_equal(res["out"][0], want)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dest=st.integers(0, 31), count=st.integers(0, 40))
def test_load_lut_rows(seed, dest, count):
    """LOAD.LUT: ``count`` 16-byte records in all, record ``i`` to row ``(dest + i) % 32``."""
    g = np.random.default_rng(seed)
    raw = g.integers(-128, 128, 16 * count)
    B = CFG.dram_bytes_per_cycle
    blob = raw.astype(np.int8).tobytes()
    dram = [int.from_bytes(blob[i:i + B], "little") for i in range(0, len(blob), B)]
    _, be = execute([], [isa.load(CFG, dram_addr=0, dram_len=len(dram), count=count,
                                  dest=dest, lut=True)], [], dram=dram or None)
    want = np.zeros((isa.LUT_ROWS, 16), dtype=np.int64)
    for i in range(count):
        want[(dest + i) % isa.LUT_ROWS] = raw[16 * i:16 * i + 16]
    assert_equal(be.driver.machine.lut.reshape(isa.LUT_ROWS, 16), want)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), seed=st.integers(0, 2**32 - 1), full=st.booleans())
def test_cell(n, seed, full):
    """CELL against :func:`model.intref.lstm_cell` (gates in their LUT ranges, or any int8)."""
    g = np.random.default_rng(seed)
    U = n * K
    lo_g = -128 if full else 0
    i, f, o = (g.integers(lo_g, 128, U) for _ in range(3))
    gg = g.integers(-128, 128, U)
    c = g.integers(-32768, 32768, U)
    # table 0 random: CELL must use table 1 (tanh)
    dram = lut_dram(CFG, [g.integers(-128, 128, 256), TANH_LUT.numpy()])
    gates = np.concatenate([i, f, gg, o])
    lo = ((c & 0xFF) ^ 0x80) - 0x80
    hi = c >> 8
    instrs = [isa.load(CFG, dram_addr=0, dram_len=len(dram), count=isa.LUT_ROWS, dest=0,
                       lut=True),
              isa.cell(CFG, dst=30, a=0, b=12, n=n)]
    res, _ = execute([(0, gates), (12, np.concatenate([lo, hi]))], instrs,
                     [(30, n), (12, 2 * n)], dram=dram)
    c_ref, _, h_ref = lstm_cell(*(torch.tensor(v) for v in (i, f, gg, o, c)), TANH_LUT)
    assert_equal(res["out"][0], h_ref.numpy())
    planes = res["out"][1]
    c_got = planes[U:] * 256 + (planes[:U] & 0xFF)
    assert_equal(c_got, c_ref.numpy())
    assert res["cycles"] == 1 + (2 + 512 + 4) + (2 + 6 * n + 5) + 2   # LOAD.LUT: 512 words + 4


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), seed=st.integers(0, 2**32 - 1), arg=st.integers(0, 4),
       indexed=st.booleans())
def test_move(n, seed, arg, indexed):
    table = vec(5 * n, seed)
    res, _ = execute([(0, table)], [isa.move(CFG, dst=40, a=0, n=n, indexed=indexed)],
                     [(40, n)], arg=arg)
    src = arg * n if indexed else 0
    assert_equal(res["out"][0], table[src * K:(src + n) * K])


# -- LOAD against the decompressor's reference ------------------------------------------------

LOAD_CFGS = [
    CFG,
    HardwareConfig.tiny().replace(weight_bits=4, dram_depth=4096),
    # B > K/8: sparse records shorter than a DRAM word, the parser throttles the reads
    HardwareConfig.tiny().replace(dram_bytes_per_cycle=4, dram_depth=1024),
    HardwareConfig.tiny().replace(k=16, lanes=3, dram_bytes_per_cycle=2, weight_bits=4,
                                  dram_depth=2048),
]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_load_matches_reference_load(data):
    cfg = data.draw(st.sampled_from(LOAD_CFGS))
    params = data.draw(st.booleans())
    count = data.draw(st.integers(0, 6))
    dest = data.draw(st.integers(0, cfg.wsram_depth - 1 if not params else cfg.param_depth - 1))
    seed = data.draw(st.integers(0, 2**32 - 1))
    short = data.draw(st.integers(0, 3))
    g = np.random.default_rng(seed)
    n = count * cfg.lanes
    B = cfg.dram_bytes_per_cycle
    if params:
        blob = g.integers(0, 256, 16 * n).astype(np.uint8).tobytes()
    else:
        qmax = (1 << (cfg.weight_bits - 1)) - 1
        w = g.integers(-qmax - 1, qmax + 1, (n, cfg.k))
        w[g.random((n, cfg.k)) < g.random()] = 0
        blob = compress_words(cfg, w)
    blob += bytes(-len(blob) % B)
    words = [int.from_bytes(blob[i:i + B], "little") for i in range(0, len(blob), B)]
    dram_addr = data.draw(st.integers(0, 8))
    dram_len = max(0, len(words) - short)
    instr = isa.load(cfg, dram_addr=dram_addr, dram_len=dram_len, count=count, dest=dest,
                     params=params)

    async def routine(d):
        await d.write_dram(words, base=dram_addr)
        await d.write_imem([instr, isa.end(cfg)])
        return await d.run(0)

    cycles, be = run(cfg, routine)
    m = be.driver.machine
    dram = [0] * dram_addr + words + [0] * 16
    ref = reference_load(cfg, dram, dram_addr=dram_addr, dram_len=dram_len, count=count,
                         dest=dest, params=params)
    assert cycles == 1 + 2 + ref.cycles + 2
    assert (machine_counter(be, "dram_bytes")) == ref.dram_reads * B
    want_w = np.zeros_like(m.wsram)
    want_p = {}
    for _, lane, addr, value in ref.writes:
        if params:
            want_p[(lane, addr % cfg.param_depth)] = value.to_bytes(16, "little")
        else:
            vals = value & ((1 << cfg.wword_bits) - 1)      # the bitmap beside it, if stored
            wb = cfg.weight_bits
            for k in range(cfg.k):
                f = (vals >> (k * wb)) & ((1 << wb) - 1)
                want_w[lane, addr % cfg.wsram_depth, k] = f - (1 << wb) if f >> (wb - 1) else f
    if params:
        got = {(lane, a): m.pmem[lane, a].tobytes() for lane in range(cfg.lanes)
               for a in range(cfg.param_depth) if m.pmem[lane, a].tobytes() != bytes(16)}
        assert got == {k: v for k, v in want_p.items() if v != bytes(16)}
    else:
        assert_equal(m.wsram, want_w)


def machine_counter(be, name):
    return be.driver.machine.counters[name]


def test_decode_weight_stream_is_decompress_stream():
    from compiler.compress import decompress_stream
    for cfg in LOAD_CFGS:
        g = np.random.default_rng(cfg.k + cfg.weight_bits)
        qmax = (1 << (cfg.weight_bits - 1)) - 1
        w = g.integers(-qmax - 1, qmax + 1, (40, cfg.k))
        w[g.random((40, cfg.k)) < 0.6] = 0
        blob = compress_words(cfg, w)
        sizes = [cfg.bitmap_bytes + (int(np.count_nonzero(r)) * cfg.weight_bits + 7) // 8
                 for r in w]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        assert_equal(decode_weight_stream(cfg, blob, starts), decompress_stream(cfg, blob, 40))
        assert_equal(decode_weight_stream(cfg, blob, starts), w)


# -- MATVEC and the matvec host routine ------------------------------------------------------

@pytest.mark.parametrize("w_bits,rows,cols,sparsity,az", [
    (8, 16, 16, 0.5, 0.3), (8, 5, 40, 0.2, 0.5), (4, 30, 20, 0.8, 0.0), (8, 3, 8, 0.0, 0.0)])
def test_run_matvec_equals_int_matvec(w_bits, rows, cols, sparsity, az):
    """sim.host.run_matvec on the functional backend: outputs equal model.quant.int_matvec
    (sparse and dense programs), the zero-skipping counters equal expected_counts."""
    cfg = HardwareConfig.tiny().replace(weight_bits=w_bits)
    layer = random_layer(rows, cols, sparsity=sparsity, w_bits=w_bits, seed=rows)
    x = random_input(cols, seed=cols, zero_fraction=az)
    cm = compile_matvec(cfg, layer)
    raw = backends.run_matvec("functional", cfg, cm, cm.pack_input(x))
    want = int_matvec(layer, x, acc_bits=cfg.acc_bits).numpy()
    assert_equal(cm.unpack_output(raw["out_words"]), want)
    assert_equal(cm.unpack_output(raw["out_words_dense"]), want)
    exp = expected_counts(cfg, layer, x)
    cn = raw["counters"]["matvec"]
    assert cn["macs"] == exp["nonzero_products"]
    assert cn["skip_zero_w"] == exp["zero_weight"]
    assert cn["skip_zero_a"] == exp["zero_activation"]
    assert raw["counters"]["matvec_dense"]["macs"] == exp["total_pairs"]
    assert cn["instr_matvec"] == 1 and cn["instr_end"] == 1
    assert raw["cycles"]["matvec"] < raw["cycles"]["matvec_dense"] or sparsity == 0
    assert raw["weight_load_cycles"] == cm.stats["weight_dram_words"] + 4 + 1  # + decode cycle


def test_matvec_requantization_extremes():
    """bias wrap at acc_bits, shift 0 (no rounding) and large shifts, saturation."""
    from model.quant import QuantLinear
    w = torch.tensor([[127] * 8, [-128] * 8, [1] * 8, [0] * 8, [5, 0, 0, 0, 0, 0, 0, 0]])
    layer = QuantLinear(w.to(torch.int8), torch.tensor([2**31 - 1, -(2**31), 3, -7, 0]),
                        torch.tensor([2**30, 2**31 - 1, 1, 12345, 2**30 + 7]),
                        torch.tensor([0, 40, 63, 1, 33]), 8)
    x = torch.tensor([127, -128, 1, 0, 5, -5, 64, -1])
    cfg = HardwareConfig.tiny()
    cm = compile_matvec(cfg, layer)
    raw = backends.run_matvec("functional", cfg, cm, cm.pack_input(x))
    assert_equal(cm.unpack_output(raw["out_words"]), int_matvec(layer, x, acc_bits=32).numpy())


def test_functional_matches_amaranth_on_a_matvec():
    """Values, every common counter and the cycles of LOAD and MATVEC programs equal the
    Amaranth simulation of rtl.top.Accelerator (the estimate is exact on this slice)."""
    cfg = HardwareConfig.tiny()
    layer = random_layer(12, 24, sparsity=0.7, w_bits=8, seed=2)
    x = random_input(24, seed=3, zero_fraction=0.3)
    cm = compile_matvec(cfg, layer)
    f = backends.run_matvec("functional", cfg, cm, cm.pack_input(x))
    a = backends.run_matvec("amaranth", cfg, cm, cm.pack_input(x))
    assert f["out_words"] == a["out_words"]
    assert f["cycles"] == a["cycles"]
    for prog, cn in a["counters"].items():
        assert {k: f["counters"][prog][k] for k in cn} == cn, prog


@pytest.mark.parametrize("changes,rows,cols,sparsity,zero_fraction", [
    ({"result_ports": 1}, 12, 24, 0.7, 0.3),             # one result per cycle
    ({"m": 3}, 10, 40, 0.5, 0.2),                        # M does not divide K: words share cycles
    ({"m": 1}, 9, 16, 0.4, 0.0),
    ({"lanes": 4, "result_ports": 2}, 16, 8, 0.3, 0.0),  # one word per row: arbiter-bound
    ({"lanes": 4, "result_ports": 3}, 13, 24, 0.8, 0.5),
])
def test_functional_matches_amaranth_lane_and_arbiter_variants(changes, rows, cols, sparsity,
                                                               zero_fraction):
    """The issue model (rtl.mac_lane.issue_cycles: pairs of two words per cycle) and the
    result_ports arbiter model equal the Amaranth simulation, sparse and dense, cycle for
    cycle, with every common counter."""
    cfg = HardwareConfig.tiny().replace(**changes)
    layer = random_layer(rows, cols, sparsity=sparsity, w_bits=8, seed=rows + cols)
    x = random_input(cols, seed=cols, zero_fraction=zero_fraction)
    cm = compile_matvec(cfg, layer)
    f = backends.run_matvec("functional", cfg, cm, cm.pack_input(x))
    a = backends.run_matvec("amaranth", cfg, cm, cm.pack_input(x))
    assert f["out_words"] == a["out_words"]
    assert f["out_words_dense"] == a["out_words_dense"]
    assert f["cycles"] == a["cycles"]
    for prog, cn in a["counters"].items():
        assert {k: f["counters"][prog][k] for k in cn} == cn, prog


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=5), min_size=1, max_size=6),
       st.integers(1, 4), st.integers(0, 2**16))
def test_matvec_unit_cycles_arbiter_model(slots, ports, seed):
    """The closed form of the ``ports``-result arbiter equals a naive cycle loop (completion
    order, up to ``ports`` writes per cycle)."""
    from sim.functional import MATVEC_LATENCY, _matvec_unit_cycles
    S = max(len(r) for r in slots)
    issue = np.array([r + [1] * (S - len(r)) for r in slots], dtype=np.int64)
    write = np.random.default_rng(seed).random(issue.shape) < 0.8
    done = sorted(np.cumsum(issue, axis=1)[write].tolist())
    t, last, queue = 0, 0, list(done)
    while queue:
        t += 1
        ready = [c for c in queue if c <= t]
        for c in ready[:ports]:
            queue.remove(c)
            last = t
    want = max(last, int(issue.sum(axis=1).max())) + MATVEC_LATENCY
    assert _matvec_unit_cycles(issue, write, ports) == want


# -- programs, counters, errors ---------------------------------------------------------------

def test_end_only_program_and_counters():
    res, be = execute([], [], [])
    assert res["cycles"] == 3
    assert res["counters"]["instr_end"] == 1
    assert be.stats["runs"] == 1 and be.stats["instructions"] == 1
    assert be.driver.last_run["instructions"] == {"END": 1}


def test_host_words_advance_cycles():
    res, _ = execute([(0, vec(3, 0))], [], [(0, 2)])
    assert res["counters"]["host_words"] == 5
    assert res["counters"]["cycles"] == 3 + 5


def test_counter_names_cover_the_rtl():
    from rtl.top import COUNTERS as RTL_COUNTERS
    assert set(RTL_COUNTERS) <= set(COUNTERS)
    assert {f"instr_{op.name.lower()}" for op in isa.Op} <= set(COUNTERS)


def test_unknown_opcode_faults():
    async def routine(d):
        await d.write_imem([0xB])
        return await d.run(0)
    with pytest.raises(DriverError, match="fault set .unknown opcode 11 at pc 0"):
        run(CFG, routine)


def test_program_without_end_times_out():
    async def routine(d):
        await d.write_imem([isa.move(CFG, dst=1, a=0, n=1)] * CFG.imem_depth)
        return await d.run(0)
    with pytest.raises(DriverError, match="done did not rise within 1000 cycles"):
        run(CFG, routine, run_timeout_cycles=1000)


def test_undefined_behaviour_is_refused():
    with pytest.raises(FunctionalError, match=r"pc 0: VADD dst=1 a=0 b=8 n=2: destination "
                                              r"words 1..2 partly overlap source a"):
        execute([], [isa.vadd(CFG, dst=1, a=0, b=8, n=2)], [])
    with pytest.raises(FunctionalError, match="CELL .*operands overlap"):
        execute([], [isa.cell(CFG, dst=2, a=0, b=8, n=1)], [])
    # not strict: executes (reads before writes)
    res, _ = execute([(0, np.ones(2 * K, dtype=np.int64))],
                     [isa.vadd(CFG, dst=1, a=0, b=0, n=2)], [(1, 2)], strict=False)
    assert_equal(res["out"][0], np.full(2 * K, 2))
    # a MATVEC writing into its own input
    layer = random_layer(4, 8, sparsity=0.0, w_bits=8, seed=0)
    cm = compile_matvec(CFG, layer)
    load = cm.image.program_words[cm.image.entry("load"):][:2]
    bad = isa.matvec(CFG, w_base=0, p_base=0, n_rows=cm.n_slots, n_words=1, in_base=0,
                     out_base=0)

    async def routine(d):
        await host.load_image(d, cm.image)
        await d.write_imem(load + [bad, isa.end(CFG)])
        return await d.run(0)
    with pytest.raises(FunctionalError, match="writes into its input words 0..0"):
        run(CFG, routine)


def test_driver_checks():
    async def routine(d):
        await d.write_act(CFG.act_depth - 1, [1, 2])
    with pytest.raises(DriverError, match=r"write_act: words \[63, 65\) outside"):
        run(CFG, routine)

    async def big_arg(d):
        await d.write_imem([isa.end(CFG)])
        await d.run(0, CFG.act_depth)
    with pytest.raises(DriverError, match="arg 64 does not fit the 6-bit ARG register"):
        run(CFG, big_arg)


def test_backend_registered_and_no_waves(tmp_path):
    assert "functional" in backends.BACKENDS
    be = backends.get_backend("functional", CFG)
    assert isinstance(be, FunctionalBackend)
    with pytest.raises(ValueError, match="no signals to trace"):
        be.run(lambda d: None, waves=tmp_path / "x.vcd")
