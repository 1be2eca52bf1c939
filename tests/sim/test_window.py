"""Tests of sim/window.py: the switching driver with two functional drivers standing in for the
HDL and the functional model (no HDL simulator): routing, the activation-SRAM copies both ways,
counters (a windowed run counts exactly what a plain run counts), run_windowed on a backend,
and a corrupted copy surfacing as a mismatch. The HDL end to end (Verilator, Icarus, Amaranth)
is in test_cmd_simulate.py."""

from __future__ import annotations

import asyncio
from functools import partial

import numpy as np
import pytest
import torch
from numpy.testing import assert_equal

from compiler.rnnt import compile_rnnt, fit_config
from model.frontend import FEATURE_DIM
from model.intref import IntRNNT
from rtl.config import HardwareConfig
from sim import rnnt_host
from sim.functional import FunctionalBackend, FunctionalDriver
from sim.host import load_image
from sim.window import WindowDriver, act_extent, run_windowed
from tests.sim.test_cmd_simulate import _model

FRAMES = 5


@pytest.fixture(scope="module")
def setup():
    im = IntRNNT.from_model(_model())
    cfg = fit_config(HardwareConfig.tiny(), im)
    crnnt = compile_rnnt(cfg, im)
    g = torch.Generator().manual_seed(11)
    feats = torch.randint(-128, 128, (FRAMES, FEATURE_DIM), generator=g, dtype=torch.int8)
    return im, cfg, crnnt, feats.numpy()


class _Recording(FunctionalDriver):
    """A functional driver that logs the programs it runs (by pc)."""

    def __init__(self, cfg, **kw):
        super().__init__(cfg, **kw)
        self.pcs = []

    async def run(self, pc, arg=0):
        self.pcs.append(pc)
        return await super().run(pc, arg)


def _words(cfg, seed, n):
    g = np.random.default_rng(seed)
    return [int(w) for w in g.integers(0, 1 << 62, n)]       # fit any aword_bits >= 62


def test_routing_and_copies_both_ways(setup):
    _, cfg, crnnt, _ = setup
    hdl, fun = _Recording(cfg), _Recording(cfg)
    init = crnnt.programs["init"]["pc"]
    n = act_extent(crnnt)
    wd = WindowDriver(hdl, fun, act_words=n, setup_pcs=(init,))
    assert wd.counter_names == hdl.counter_names and not wd.inside

    async def go():
        await load_image(wd, crnnt.image)                       # loads: both
        for d in (hdl, fun):
            assert_equal(d.machine.dram, fun.machine.dram)
            assert list(d.machine.imem) == list(fun.machine.imem)
        assert fun.machine.dram.any()
        # the setup program: both; the HDL's cycles are returned
        cyc = await wd.run(init)
        assert hdl.pcs == fun.pcs == [init]
        assert_equal(hdl.machine.wsram, fun.machine.wsram)
        assert_equal(hdl.machine.lut, fun.machine.lut)
        assert fun.machine.lut.any()
        assert wd.summary()["setup_runs"] == [{"pc": init, "hdl_cycles": cyc,
                                               "functional_cycles": cyc}]
        # outside: activations and runs on the functional model only
        a = _words(cfg, 1, n)
        await wd.write_act(0, a)
        assert await wd.read_act(0, n) == a
        assert not hdl.machine.act.any()
        enc = crnnt.programs["encoder"]["pc"]
        await wd.run(enc)
        assert fun.pcs == [init, enc] and hdl.pcs == [init]
        # a word beyond act_words is not copied
        beyond = _words(cfg, 2, cfg.act_depth - n) if n < cfg.act_depth else []
        if beyond:
            await hdl.write_act(n, beyond)
        # enter: the functional model's words [0, n) go to the HDL
        want = await fun.read_act(0, n)
        await wd.trace(True)
        assert wd.inside and wd.active is hdl
        assert await hdl.read_act(0, n) == want
        if beyond:
            assert await hdl.read_act(n, len(beyond)) == beyond
        await wd.trace(True)                                     # no-op
        assert wd.summary()["words_to_hdl"] == n
        # inside: the HDL only
        b = _words(cfg, 3, 4)
        await wd.write_act(2, b)
        assert await hdl.read_act(2, 4) == b and await fun.read_act(2, 4) == want[2:6]
        await wd.run(enc)
        assert hdl.pcs == [init, enc] and fun.pcs == [init, enc]
        # leave: the HDL's words come back to the functional model
        got = await hdl.read_act(0, n)
        await wd.trace(False)
        assert not wd.inside and wd.active is fun
        assert await fun.read_act(0, n) == got
        s = wd.summary()
        assert (s["windows"], s["words_to_hdl"], s["words_from_hdl"]) == (1, n, n)
        assert (s["hdl_runs"], s["functional_runs"]) == (1, 1)
        assert s["act_words"] == n

    asyncio.run(go())


async def _utterance(driver, crnnt, feats, im, beam, window):
    return await rnnt_host.run_utterance(driver, crnnt, feats, im, beam=beam, nbest=beam,
                                         check="all", trace_frames=window)


@pytest.mark.parametrize("window, beam", [((1, 3), 1), ((0, 2), 2), ((3, 9), 2)])
def test_windowed_run_counts_what_a_plain_run_counts(setup, window, beam):
    """Both sides functional: the windowed run must give the plain run's results, cycles and
    counters exactly (the copies excluded), whatever ran where."""
    im, cfg, crnnt, feats = setup
    plain = asyncio.run(_utterance(FunctionalDriver(cfg), crnnt, feats, im, beam, None))
    hdl, fun = _Recording(cfg), _Recording(cfg)
    init = crnnt.programs["init"]["pc"]
    wd = WindowDriver(hdl, fun, act_words=act_extent(crnnt), setup_pcs=(init,))
    res = asyncio.run(_utterance(wd, crnnt, feats, im, beam, window))
    for key in ("text", "ids", "nbest", "bit_exact", "compared", "runs", "cycles",
                "cycles_total", "init_cycles", "port_words", "counters"):
        assert res[key] == plain[key], key
    assert res["counters"]["cycles"] > 0 and res["counters"]["macs"] > 0
    s = wd.summary()
    assert s["hdl_run_cycles"] + s["functional_run_cycles"] == plain["cycles_total"]
    assert s["hdl_runs"] + s["functional_runs"] == sum(plain["runs"].values())
    # the window's encoders ran on the "HDL", the others on the functional model
    enc = crnnt.programs["encoder"]["pc"]
    a, b = window[0], min(window[1], FRAMES)
    assert hdl.pcs.count(enc) == b - a
    assert fun.pcs.count(enc) == FRAMES - (b - a)
    assert hdl.pcs[0] == fun.pcs[0] == init
    assert s["windows"] == 1 and s["words_to_hdl"] == s["words_from_hdl"] == act_extent(crnnt)


def test_run_windowed_on_a_backend(setup):
    """run_windowed as a backend routine (here the functional backend plays the HDL)."""
    im, cfg, crnnt, feats = setup
    inner = partial(rnnt_host.run_utterance, crnnt=crnnt, feats_q=feats, int_model=im,
                    trace_frames=(2, 4))
    routine = partial(run_windowed, routine=inner, act_words=act_extent(crnnt),
                      setup_pcs=(crnnt.programs["init"]["pc"],))
    be = FunctionalBackend(cfg)
    res = be.run(routine)
    plain = FunctionalBackend(cfg).run(partial(rnnt_host.run_utterance, crnnt=crnnt,
                                               feats_q=feats, int_model=im))
    assert res["text"] == plain["text"] and res["counters"] == plain["counters"]
    w = res["window"]
    assert w["windows"] == 1 and w["hdl_runs"] > 0 and w["functional_runs"] > 0
    assert w["hdl_run_cycles"] + w["functional_run_cycles"] == res["cycles_total"]
    # the backend's own driver (the "HDL") ran only the window and the setup
    assert be.driver.stats["runs"] == w["hdl_runs"] + len(w["setup_runs"])


class _Corrupting(FunctionalDriver):
    """An "HDL" whose host port flips bit 6 of every element of the words ``region`` in the
    copy of ``n`` words (``direction``: ``"in"`` on write_act, ``"out"`` on read_act)."""

    def __init__(self, cfg, n, region, direction):
        super().__init__(cfg)
        self.n, self.region, self.direction = n, region, direction
        self.mask = int.from_bytes(b"\x40" * cfg.k, "little")

    def _corrupt(self, words):
        words = list(words)
        for i in range(self.region.base, self.region.end):
            words[i] ^= self.mask
        return words

    async def write_act(self, base, words):
        if self.direction == "in" and base == 0 and len(words) == self.n:
            words = self._corrupt(words)
        await super().write_act(base, words)

    async def read_act(self, base, n):
        words = await super().read_act(base, n)
        if self.direction == "out" and base == 0 and n == self.n:
            words = self._corrupt(words)
        return words


@pytest.mark.parametrize("direction", ["in", "out"])
def test_a_bad_state_copy_is_a_mismatch(setup, direction):
    """A copy that damages the recurrent state shows as an RNNTMismatch: in the window's first
    frame (copy in) or the first frame after it (copy out). (The cell state: this random
    model's saturated gates hide a damaged hidden state.)"""
    im, cfg, crnnt, feats = setup
    n = act_extent(crnnt)
    c0 = crnnt.layout["C0"]                              # the first layer's cell state
    wd = WindowDriver(_Corrupting(cfg, n, c0, direction), FunctionalDriver(cfg), act_words=n,
                      setup_pcs=(crnnt.programs["init"]["pc"],))
    with pytest.raises(rnnt_host.RNNTMismatch) as e:
        asyncio.run(_utterance(wd, crnnt, feats, im, 1, (1, 3)))
    assert e.value.frame == (1 if direction == "in" else 3)
    assert (e.value.program, e.value.tensor) == ("encoder", "C0")


def test_counters_wrap_modulo_counter_bits(setup):
    _, cfg, _, _ = setup
    hdl, fun = FunctionalDriver(cfg), FunctionalDriver(cfg)
    mod = 1 << cfg.counter_bits
    fun.machine.counters["macs"] = mod - 3
    hdl.machine.counters["macs"] = mod - 1
    wd = WindowDriver(hdl, fun, act_words=1)

    async def go():
        await wd.trace(True)
        hdl.machine.counters["macs"] += 5                   # the HDL's counter wraps
        c = await wd.counters()
        assert c["macs"] == (mod - 3 + 5) % mod
        await wd.trace(False)
        assert (await wd.counters())["macs"] == 2

    asyncio.run(go())


def test_bad_arguments(setup):
    _, cfg, _, _ = setup
    with pytest.raises(ValueError, match="different configurations"):
        WindowDriver(FunctionalDriver(cfg), FunctionalDriver(cfg.replace(lanes=cfg.lanes * 2)))
    for n in (0, cfg.act_depth + 1):
        with pytest.raises(ValueError, match=r"act_words must be in 1\.\."):
            WindowDriver(FunctionalDriver(cfg), FunctionalDriver(cfg), act_words=n)
