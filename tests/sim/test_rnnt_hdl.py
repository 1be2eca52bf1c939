"""Whole utterances through the RTL: a tiny quantized, pruned RNN-T compiled for a tiny
configuration, run by the host decoder loop (sim/rnnt_host.py) on cocotb + Verilator, cocotb +
Icarus and the Amaranth simulator. Every value the host reads is compared with IntRNNT
(``check="all"``: gates, cell states and hidden states of every layer too); the simulators must
agree cycle for cycle and counter for counter; resident and streamed weights both run, and
streaming costs the LOAD cycles it should."""

from functools import partial

import numpy as np
import pytest
import torch

from compiler.rnnt import compile_rnnt, fit_config
from model.decode import beam_search
from model.intref import IntRNNT
from rtl.config import HardwareConfig
from sim import backends, rnnt_host
from sim.build import simulator_available
from model.frontend import FEATURE_DIM
from tests.sim.test_cmd_simulate import _model

FRAMES = 6


@pytest.fixture(scope="module")
def setup():
    im = IntRNNT.from_model(_model())
    cfg = fit_config(HardwareConfig.tiny(), im)
    g = torch.Generator().manual_seed(5)
    feats = torch.randint(-128, 128, (FRAMES, FEATURE_DIM), generator=g, dtype=torch.int8)
    return im, cfg, feats


def _run(simulator, cfg, crnnt, im, feats, beam):
    why = simulator_available(simulator) if simulator in ("verilator", "icarus") else None
    if why:
        pytest.skip(why)
    routine = partial(rnnt_host.run_utterance, crnnt=crnnt, feats_q=feats.numpy(), int_model=im,
                      beam=beam, nbest=beam, check="all")
    return backends.get_backend(simulator, cfg).run(routine)


def _same(a, b):
    assert a["cycles_total"] == b["cycles_total"]
    assert a["counters"] == b["counters"]
    assert a["nbest"] == b["nbest"] and a["ids"] == b["ids"]


@pytest.mark.parametrize("beam", [1, 2])
def test_verilator_and_icarus_agree_bit_exact(setup, beam):
    im, cfg, feats = setup
    crnnt = compile_rnnt(cfg, im)
    assert crnnt.residency["weights"] == "resident"
    res = {s: _run(s, cfg, crnnt, im, feats, beam) for s in ("verilator", "icarus")}
    _same(res["verilator"], res["icarus"])
    want = beam_search(im.decoder(), feats, beam=beam, nbest=beam)
    assert [text for text, _ in res["verilator"]["nbest"]] == [text for text, _ in want]
    cnt = res["verilator"]["counters"]
    assert cnt["instr_cell"] > 0 and cnt["instr_lut"] > 0 and cnt["instr_move"] > 0
    assert cnt["vector_cycles"] > 0 and cnt["load_cycles"] == 0     # resident: no LOAD


def test_streamed_weights_on_verilator_and_amaranth(setup):
    im, cfg, feats = setup
    resident = compile_rnnt(cfg, im)
    streamed = compile_rnnt(cfg, im, residency="streamed")
    assert streamed.residency["weights"] == "streamed"
    short = feats[:2]
    rs = _run("verilator", cfg, resident, im, short, 1)
    st = _run("verilator", cfg, streamed, im, short, 1)
    am = _run("amaranth", cfg, streamed, im, short, 1)
    _same(st, am)
    assert st["counters"]["load_cycles"] > 0 and st["counters"]["dram_bytes"] > 0
    assert st["nbest"] == rs["nbest"]
    # The same MATVECs and vector instructions; streaming adds the LOADs.
    for name in ("matvec_cycles", "vector_cycles", "macs"):
        assert st["counters"][name] == rs["counters"][name], name
    assert st["cycles_total"] - rs["cycles_total"] >= st["counters"]["load_cycles"]
