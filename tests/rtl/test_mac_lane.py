"""MacLane in the Amaranth simulator against a deliberately naive Python golden model."""

import random

import numpy as np
import pytest
from amaranth import Module, unsigned
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from rtl.config import HardwareConfig
from rtl.mac_lane import MacLane, issue_cycles
from rtl.memfmt import ParamRecord


def naive_requant(acc, bias, mult, shift, acc_bits=32):
    t = (acc + bias) % (1 << acc_bits)
    if t >= 1 << (acc_bits - 1):
        t -= 1 << acc_bits
    p = t * mult
    if shift:
        p = (p + 2 ** (shift - 1)) // 2 ** shift
    return max(-128, min(127, p))


def pack(values, bits):
    word = 0
    for k, v in enumerate(values):
        word |= (v & ((1 << bits) - 1)) << (k * bits)
    return word


def run_lane(cfg, W, x, params, *, dense=False, ready_prob=1.0, seed=0):
    """W: rows x (n_words*K) ints, x: n_words*K ints, params: list of ParamRecord."""
    K = cfg.k
    n_rows = len(W)
    n_words = len(x) // K
    lane = MacLane(cfg)
    wmem = Memory(shape=unsigned(cfg.wword_bits), depth=cfg.wsram_depth,
                  init=[pack(r[j * K:(j + 1) * K], cfg.weight_bits) for r in W for j in range(n_words)])
    amem = Memory(shape=unsigned(cfg.aword_bits), depth=cfg.act_depth,
                  init=[pack(x[j * K:(j + 1) * K], 8) for j in range(n_words)])
    pmem = Memory(shape=unsigned(128), depth=cfg.param_depth,
                  init=[int.from_bytes(p.pack(), "little") for p in params])
    m = Module()
    m.submodules.lane = lane
    m.submodules.wmem, m.submodules.amem, m.submodules.pmem = wmem, amem, pmem
    # The nonzero bitmaps the top stores beside the weight and activation words.
    wnzmem = Memory(shape=unsigned(K), depth=cfg.wsram_depth,
                    init=[pack([v != 0 for v in r[j * K:(j + 1) * K]], 1)
                          for r in W for j in range(n_words)])
    anzmem = Memory(shape=unsigned(K), depth=cfg.act_depth,
                    init=[pack([v != 0 for v in x[j * K:(j + 1) * K]], 1) for j in range(n_words)])
    m.submodules.wnzmem, m.submodules.anzmem = wnzmem, anzmem
    for mem, pfx, port in ((wmem, "w", "data"), (amem, "a", "data"), (pmem, "p", "data"),
                           (wnzmem, "w", "nz"), (anzmem, "a", "nz")):
        rp = mem.read_port()
        m.d.comb += [rp.addr.eq(getattr(lane, f"{pfx}_rd_addr")), rp.en.eq(getattr(lane, f"{pfx}_rd_en")),
                     getattr(lane, f"{pfx}_rd_{port}").eq(rp.data)]
    results, stats = [], {"cycles": 0, "macs": 0, "skip_w": 0, "skip_a": 0, "busy": 0}
    rng = random.Random(seed)

    async def tb(ctx):
        ctx.set(lane.dense, dense)
        ctx.set(lane.n_rows, n_rows)
        ctx.set(lane.n_words, n_words)
        ctx.set(lane.start, 1)
        await ctx.tick()
        ctx.set(lane.start, 0)
        while True:
            ready = rng.random() < ready_prob
            ctx.set(lane.res_ready, ready)
            if ctx.get(lane.res_valid) and ready:
                results.append((ctx.get(lane.res_index), ctx.get(lane.res_value)))
            stats["macs"] += ctx.get(lane.st_macs)
            stats["skip_w"] += ctx.get(lane.st_skip_w)
            stats["skip_a"] += ctx.get(lane.st_skip_a)
            stats["busy"] += ctx.get(lane.st_busy)
            stats["cycles"] += 1
            busy = ctx.get(lane.busy)
            await ctx.tick()
            if not busy:
                break
            assert stats["cycles"] < 100000

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return results, stats


def golden(cfg, W, x, params):
    out = {}
    for r, row in enumerate(W):
        acc = sum(w * a for w, a in zip(row, x))
        p = params[r]
        if p.write:
            out[p.out_index] = naive_requant(acc, p.bias, p.mult, p.shift, cfg.acc_bits)
    return out


def random_case(cfg, rng, n_rows, n_words, w_density, a_density):
    wmax = (1 << (cfg.weight_bits - 1))
    W = [[rng.randint(-wmax, wmax - 1) if rng.random() < w_density else 0
          for _ in range(n_words * cfg.k)] for _ in range(n_rows)]
    x = [rng.randint(-128, 127) if rng.random() < a_density else 0 for _ in range(n_words * cfg.k)]
    params = [ParamRecord(rng.randint(-5000, 5000), rng.randint(1 << 20, (1 << 31) - 1),
                          rng.randint(20, 40), rng.random() < 0.9, 3 * r + 1)
              for r in range(n_rows)]
    return W, x, params


def check(cfg, W, x, params, **kw):
    results, stats = run_lane(cfg, W, x, params, **kw)
    want = golden(cfg, W, x, params)
    assert len(results) == len(want)
    assert dict(results) == want if len({i for i, _ in results}) == len(results) else True
    # Results leave in row order.
    assert [v for _, v in results] == [want_v for want_v in
                                       [naive_requant(sum(w * a for w, a in zip(W[r], x)), params[r].bias,
                                                      params[r].mult, params[r].shift, cfg.acc_bits)
                                        for r in range(len(W)) if params[r].write]]
    return stats


TINY = HardwareConfig.tiny()


def test_constructor_checks_config():
    with pytest.raises(TypeError, match="HardwareConfig"):
        MacLane({"lanes": 2})


@pytest.mark.parametrize("w_density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("weight_bits", [4, 8])
def test_matches_golden(w_density, weight_bits):
    cfg = TINY.replace(weight_bits=weight_bits)
    rng = random.Random(int(w_density * 10) + weight_bits)
    W, x, params = random_case(cfg, rng, 5, 3, w_density, 0.8)
    stats = check(cfg, W, x, params)
    nz = sum(1 for row in W for w, a in zip(row, x) if w and a)
    assert stats["macs"] == nz
    assert stats["skip_w"] == sum(1 for row in W for w in row if w == 0)
    assert stats["skip_a"] == sum(1 for row in W for w, a in zip(row, x) if w and not a)


def test_dense_mode_issues_every_pair():
    rng = random.Random(3)
    W, x, params = random_case(TINY, rng, 4, 2, 0.3, 0.5)
    stats = check(TINY, W, x, params, dense=True)
    assert stats["macs"] == 4 * 2 * TINY.k
    assert stats["busy"] == 4 * 2 * TINY.k // TINY.m
    assert stats["skip_w"] == stats["skip_a"] == 0


def test_extremes_and_saturation():
    cfg = TINY
    K = cfg.k
    W = [[-128] * K, [127] * K, [-128] * K, [0] * K]
    x = [-128] * K
    params = [ParamRecord(0, (1 << 31) - 1, 0, True, 0),     # saturates high
              ParamRecord(0, (1 << 31) - 1, 0, True, 1),     # saturates low
              ParamRecord((1 << 31) - 1, 1, 0, True, 2),       # acc + bias wraps negative at 32 bits
              ParamRecord(-3, 1, 1, True, 3)]                 # -1.5 rounds half up to -1
    results, _ = run_lane(cfg, W, x, params)
    assert results == [(0, 127), (1, -128), (2, -128), (3, -1)]


def test_backpressure_keeps_every_result():
    rng = random.Random(7)
    W, x, params = random_case(TINY, rng, 20, 1, 0.5, 1.0)
    check(TINY, W, x, params, ready_prob=0.2, seed=1)


def _row_pairs(cfg, row, x, dense=False):
    K = cfg.k
    return [K if dense else sum(1 for w, a in zip(row[j * K:(j + 1) * K], x[j * K:(j + 1) * K])
                                if w and a)
            for j in range(len(x) // K)]


def test_issue_cycles_reference():
    """The timing contract by hand: M pairs per cycle from the held rest and the fresh word."""
    assert issue_cycles([], 4) == 0
    assert issue_cycles([0, 0, 0], 4) == 3            # one read per cycle
    assert issue_cycles([5], 4) == 2
    assert issue_cycles([6, 6], 4) == 3               # old per-word form: 4
    assert issue_cycles([1, 7], 4) == 3               # the first word's idle multipliers
    assert issue_cycles([3] * 5, 4) == 5
    assert issue_cycles([12, 0, 0, 0], 4) == 5        # one empty word retires beside the rest
    assert issue_cycles([64, 64], 4) == 32            # dense
    assert issue_cycles([8, 8, 8], 3) == 8            # ceil(24 / 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 64), max_size=8), st.integers(1, 16))
def test_issue_cycles_bounds(pairs, m):
    c = issue_cycles(pairs, m)
    assert max(len(pairs), -(-sum(pairs) // m)) <= c
    assert c <= sum(max(1, -(-p // m)) for p in pairs)
    if pairs:   # elementwise on numpy arrays: words along the first axis
        assert c == issue_cycles(np.array(pairs, dtype=np.int64).reshape(-1, 1), m)[0]


def test_throughput_is_bound_by_nonzero_pairs():
    """Busy cycles are the rows' issue_cycles (the lane's timing contract), back to back."""
    rng = random.Random(11)
    W, x, params = random_case(TINY, rng, 8, 4, 0.4, 1.0)
    _, stats = run_lane(TINY, W, x, params)
    expect = sum(issue_cycles(_row_pairs(TINY, row, x), TINY.m) for row in W)
    assert stats["busy"] == expect
    assert expect < sum(max(1, -(-p // TINY.m)) for row in W for p in _row_pairs(TINY, row, x))
    assert stats["cycles"] <= expect + 10   # fill + requant pipeline drain


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.floats(0, 1), st.floats(0, 1),
       st.sampled_from([1, 2, 3, 8]), st.booleans(), st.integers(0, 2**16))
def test_property_busy_cycles_match_issue_cycles(n_rows, n_words, wd, ad, m, dense, seed):
    """Any M (including M = K and M not dividing K), sparse and dense: exact results and
    st_busy equal to the sum of issue_cycles over the rows."""
    cfg = TINY.replace(m=m)
    W, x, params = random_case(cfg, random.Random(seed), n_rows, n_words, wd, ad)
    stats = check(cfg, W, x, params, dense=dense)
    assert stats["busy"] == sum(issue_cycles(_row_pairs(cfg, row, x, dense), m) for row in W)
    nz = sum(1 for row in W for w, a in zip(row, x) if w and a)
    assert stats["macs"] == (n_rows * len(x) if dense else nz)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.floats(0, 1), st.floats(0, 1),
       st.sampled_from([4, 8]), st.integers(0, 2**16))
def test_property_matches_golden(n_rows, n_words, wd, ad, wb, seed):
    cfg = TINY.replace(weight_bits=wb)
    W, x, params = random_case(cfg, random.Random(seed), n_rows, n_words, wd, ad)
    check(cfg, W, x, params)
