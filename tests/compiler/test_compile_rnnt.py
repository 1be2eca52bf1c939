"""Tests of compiler/rnnt.py and the RNN-T host program (sim/rnnt_host.py) on the functional
backend: the image decodes back to the integer model, the programs have the documented shape,
a tiny model runs end to end bit-exact against model.intref.IntRNNT (greedy and beam, resident
and streamed weights, several K), and the error paths."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from numpy.testing import assert_equal

from compiler.compress import decompress_stream
from compiler.matvec import CompileError, compile_matvec
from compiler.rnnt import (RNNT_FORMAT, CompiledRNNT, compile_rnnt, fit_config, model_hash)
from model.decode import beam_search, greedy_ids
from model.frontend import FEATURE_DIM
from model.intref import SIGMOID_LUT, TANH_LUT, IntRNNT
from model.prune import prune_post_training
from model.quant import random_layer
from model.rnnt import rnnt
from model.text import BLANK
from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import ImageError, MemoryImage, ParamRecord
from sim import backends, rnnt_host
from sim.driver import DriverError
from sim.rnnt_host import RNNTMismatch

TINY = HardwareConfig.tiny()


def _int_model(w_bits=8, *, seed=0, sparsity=0.0) -> IntRNNT:
    """A random tiny model, fake-quantized (activations on), as tests/model/test_intref.py."""
    torch.manual_seed(seed)
    m = rnnt(preset="tiny")
    with torch.no_grad():
        m.out.weight.mul_(3.0)                     # larger logits: some non-blank choices
        m.out.bias[BLANK] -= 2.0
    m.set_feature_normalization(torch.full((FEATURE_DIM,), -4.0), torch.full((FEATURE_DIM,), 3.0))
    if sparsity:
        m = prune_post_training(m, sparsity)
    m.set_quantization(w_bits=w_bits, activations=True)
    m.logit_observer.maxabs.fill_(6.0)
    return IntRNNT.from_model(m.eval())


def _feats(T=10, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-128, 128, (T, FEATURE_DIM), generator=g).to(torch.int8)


@pytest.fixture(scope="module")
def im8():
    return _int_model(8)


@pytest.fixture(scope="module")
def im4():
    return _int_model(4, seed=1, sparsity=0.6)


@pytest.fixture(scope="module")
def cfg8(im8):
    return fit_config(TINY, im8)


def _run(crnnt, feats, im, **kw):
    routine = partial(rnnt_host.run_utterance, crnnt=crnnt, feats_q=feats, int_model=im, **kw)
    be = backends.get_backend("functional", crnnt.config)
    return be.run(routine)


# -- the compiled image ---------------------------------------------------------------------

def test_fit_config_is_minimal(im8, cfg8):
    assert cfg8.lanes == TINY.lanes and cfg8.k == TINY.k and cfg8.m == TINY.m
    c = compile_rnnt(cfg8, im8)
    assert c.residency == {"weights": "resident", "params": "resident"}
    for fld in ("act_depth", "wsram_depth", "param_depth", "imem_depth", "dram_depth"):
        with pytest.raises(CompileError, match=f"HardwareConfig.{fld} is"):
            compile_rnnt(cfg8.replace(**{fld: getattr(cfg8, fld) // 2}), im8,
                         residency="resident")


def test_layout(im8, cfg8):
    c = compile_rnnt(cfg8, im8)
    lay, K, d = c.layout, cfg8.k, c.dims
    spans = sorted((r.base, r.end, n) for n, r in lay.items())
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        assert e0 <= b1, f"{n0} overlaps {n1}"
    assert spans[-1][1] == c.stats["act_words"] <= cfg8.act_depth
    assert lay["H0"].base == lay["X"].end and lay["H1"].base == lay["H0"].end
    assert lay["HP"].base == lay["E"].end
    assert lay["C0"].words == 2 * lay["H0"].words and lay["CP"].words == 2 * lay["HP"].words
    assert lay["EMB"].words == d["V"] * -(-d["E"] // K)
    assert lay["LOGITS"].elems == d["V"] and lay["X"].elems == d["F"] == FEATURE_DIM


def test_programs(im8, cfg8):
    c = compile_rnnt(cfg8, im8)
    ops = {p: [isa.decode(cfg8, w)["op"].name for w in c.program(p)] for p in c.programs}
    lstm = ["MATVEC", "LUT", "LUT", "LUT", "CELL"]
    assert ops["encoder"] == lstm * 2 + ["MATVEC", "END"]
    assert ops["predict"] == ["MOVE"] + lstm + ["MATVEC", "END"]
    assert ops["joint"] == ["VADD", "LUT", "MATVEC", "END"]
    assert ops["init"] == ["LOAD"] + ["LOAD", "LOAD"] * 6 + ["END"]
    enc = [isa.decode(cfg8, w) for w in c.program("encoder")]
    nH = c.layout["H0"].words
    g = c.layout["GATES"].base
    assert (enc[1]["flags"], enc[1]["dst"], enc[1]["n"]) == (0, g, 2 * nH)
    assert (enc[2]["flags"], enc[2]["dst"], enc[2]["n"]) == (isa.LutFlags.TANH, g + 2 * nH, nH)
    assert (enc[4]["dst"], enc[4]["a"], enc[4]["b"]) == (c.layout["H0"].base, g,
                                                          c.layout["C0"].base)
    mv = isa.decode(cfg8, c.program("predict")[0])
    assert mv["flags"] == isa.MoveFlags.INDEXED and mv["a"] == c.layout["EMB"].base
    # streamed: a weight LOAD right before every MATVEC, none in init
    s = compile_rnnt(cfg8, im8, residency="streamed")
    assert s.residency == {"weights": "streamed", "params": "resident"}
    for p in ("encoder", "predict", "joint"):
        words = [isa.decode(cfg8, w) for w in s.program(p)]
        for i, w in enumerate(words):
            if w["op"] == isa.Op.MATVEC:
                assert words[i - 1]["op"] == isa.Op.LOAD and words[i - 1]["flags"] == 0
                assert w["w_base"] == 0 == words[i - 1]["dest"]
    assert [isa.decode(cfg8, w)["flags"] for w in s.program("init")[1:-1]] == \
        [isa.LoadFlags.PARAMS] * 6


def _sram_columns(c, name):
    """(region, model columns) of each input vector of a matrix, in column order."""
    d = c.dims
    L = d["L"]
    ins = {"enc_proj": [(f"H{L - 1}", d["H"])], "pred_lstm": [("E", d["E"]), ("HP", d["P"])],
           "pred_proj": [("HP", d["P"])], "out": [("S", d["J"])],
           "encoder.0": [("X", d["F"]), ("H0", d["H"])]}
    for l in range(1, L):
        ins[f"encoder.{l}"] = [(f"H{l - 1}", d["H"]), (f"H{l}", d["H"])]
    return ins[name]


@pytest.mark.parametrize("which", ["im8", "im4"])
def test_image_decodes_back_to_the_model(which, request):
    im = request.getfixturevalue(which)
    cfg = fit_config(TINY, im)
    c = compile_rnnt(cfg, im)
    img, K, B, L = c.image, cfg.k, cfg.dram_bytes_per_cycle, cfg.lanes
    for name, q in im.matrices.items():
        p = c.matrices[name]
        wa = p.weights["dram_addr"] * B
        dense = decompress_stream(cfg, img.dram[wa:wa + p.weights["bytes"]],
                                  L * p.n_slots * p.n_words).reshape(L, p.n_slots, -1)
        pa = p.params["dram_addr"] * B
        W = np.zeros((q.rows, p.n_words * K), dtype=np.int64)
        for lane in range(L):
            for slot, row in enumerate(p.placement[lane]):
                rec = ParamRecord.unpack(img.dram[pa + 16 * (lane * p.n_slots + slot):][:16])
                if row < 0:
                    assert not rec.write and not dense[lane, slot].any()
                    continue
                W[row] = dense[lane, slot]
                assert rec.write and rec.out_index == p.out_index[row]
                assert (rec.bias, rec.mult, rec.shift) == (int(q.bias[row]), int(q.mult[row]),
                                                           int(q.shift[row]))
        cols, base = [], c.layout[_sram_columns(c, name)[0][0]].base
        for region, n in _sram_columns(c, name):
            off = (c.layout[region].base - base) * K
            cols.append(W[:, off:off + n])
        assert_equal(np.concatenate(cols, 1), q.weight.numpy(), err_msg=name)
        assert np.count_nonzero(W) == int(q.nnz)
    la = c.image.manifest["rnnt"]["lut"]["dram_addr"] * B
    lut = np.frombuffer(img.dram[la:la + 512], dtype=np.int8).reshape(2, 256)
    assert_equal(lut[isa.LUT_SIGMOID], SIGMOID_LUT.numpy())
    assert_equal(lut[isa.LUT_TANH], TANH_LUT.numpy())
    emb = np.array([np.frombuffer(w.to_bytes(K, "little"), np.int8) for w in c.embedding_words()])
    nE = -(-c.dims["E"] // K)
    assert_equal(emb.reshape(c.dims["V"], nE * K)[:, :c.dims["E"]], im.embedding.numpy())


def test_manifest_round_trip(im8, cfg8):
    c = compile_rnnt(cfg8, im8)
    man = c.image.manifest["rnnt"]
    assert man["format"] == RNNT_FORMAT and man["config_digest"] == cfg8.digest
    assert man["model_hash"] == model_hash(im8) == c.model_hash
    back = CompiledRNNT.from_image(MemoryImage.from_bytes(c.image.to_bytes(), expect=cfg8),
                                   int_model=im8, expect=cfg8)
    assert back.layout == c.layout and back.writers == c.writers
    assert back.matrices["out"].placement == c.matrices["out"].placement
    assert back.image.program == c.image.program and back.image.dram == c.image.dram


def test_model_hash_tracks_every_number(im8):
    h = model_hash(im8)
    assert model_hash(_int_model(8)) == h
    other = _int_model(8)
    other.matrices["pred_proj"].bias[3] += 1
    assert model_hash(other) != h
    other = _int_model(8)
    other.embedding[2, 1] = -other.embedding[2, 1] - 1
    assert model_hash(other) != h


# -- refusals -------------------------------------------------------------------------------

def test_corrupt_or_mismatched_image_refused(im8, cfg8):
    c = compile_rnnt(cfg8, im8)
    blob = bytearray(c.image.to_bytes())
    blob[-5] ^= 0x40
    with pytest.raises(ImageError, match="corrupt: SHA-256 checksum mismatch"):
        MemoryImage.from_bytes(bytes(blob), expect=cfg8)
    other_cfg = cfg8.replace(m=1)
    with pytest.raises(ImageError, match=f"compiled for hardware config {cfg8.digest}, but "
                                         f"this hardware is {other_cfg.digest}"):
        MemoryImage.from_bytes(c.image.to_bytes(), expect=other_cfg)
    with pytest.raises(ImageError, match=f"compiled for hardware config {cfg8.digest}"):
        CompiledRNNT.from_image(c.image, expect=other_cfg)
    other = _int_model(8, seed=5)
    with pytest.raises(ImageError, match=f"compiled from model {c.model_hash}, but the "
                                         f"reference model is {model_hash(other)}"):
        CompiledRNNT.from_image(c.image, int_model=other)
    with pytest.raises(ImageError, match=f"compiled from model {c.model_hash}"):
        _run(c, _feats(2), other)
    # the simulated hardware is another configuration
    routine = partial(rnnt_host.run_utterance, crnnt=c, feats_q=_feats(2), int_model=im8)
    with pytest.raises(ImageError, match="recompile it for this config"):
        backends.get_backend("functional", other_cfg).run(routine)
    # not an RNN-T image; a newer format
    cm = compile_matvec(TINY, random_layer(4, 8, sparsity=0.0, w_bits=8, seed=0))
    with pytest.raises(ImageError, match="not an RNN-T image"):
        CompiledRNNT.from_image(cm.image)
    man = dict(c.image.manifest, rnnt=dict(c.image.manifest["rnnt"], format=RNNT_FORMAT + 1))
    with pytest.raises(ImageError, match=f"RNN-T format {RNNT_FORMAT + 1}, this zeroskip reads "
                                         f"format {RNNT_FORMAT}"):
        CompiledRNNT.from_image(MemoryImage(cfg8, c.image.dram, c.image.program, man))


def test_compile_errors(im8, im4, cfg8):
    with pytest.raises(CompileError, match=r"activation SRAM layout .* needs 90, but "
                                           r"HardwareConfig.act_depth is 64; use a config "
                                           r"with act_depth >= 128"):
        compile_rnnt(cfg8.replace(act_depth=64), im8)
    with pytest.raises(CompileError, match=r"weights resident .* needs 1118, but "
                                           r"HardwareConfig.wsram_depth is 1024"):
        compile_rnnt(cfg8.replace(wsram_depth=1024), im8, residency="resident")
    with pytest.raises(CompileError, match=r"streamed weights: the largest matrix 'encoder.0' "
                                           r"per lane \(32 slots x 26 words\) needs 832"):
        compile_rnnt(cfg8.replace(wsram_depth=512), im8)
    with pytest.raises(CompileError, match=r"instruction memory .* needs 38, but "
                                           r"HardwareConfig.imem_depth is 32"):
        compile_rnnt(cfg8.replace(imem_depth=32), im8)
    with pytest.raises(CompileError, match=r"DRAM .* HardwareConfig.dram_depth is 16384"):
        compile_rnnt(cfg8.replace(dram_depth=16384), im8)
    with pytest.raises(CompileError, match=r"matrix 'encoder.0' has 8-bit weights but the "
                                           r"config has weight_bits=4"):
        compile_rnnt(cfg8.replace(weight_bits=4), im8)
    with pytest.raises(CompileError, match=r"can overflow the 16-bit accumulator"):
        compile_rnnt(cfg8.replace(acc_bits=16), im8)
    with pytest.raises(CompileError, match="residency must be one of auto, resident, streamed"):
        compile_rnnt(cfg8, im8, residency="sometimes")


def test_feature_errors(im8, cfg8):
    c = compile_rnnt(cfg8, im8)
    with pytest.raises(ValueError, match=r"feats_q must be integer codes of shape \(T, 192\)"):
        _run(c, torch.zeros(3, 10, dtype=torch.int8), im8)
    with pytest.raises(ValueError, match="beam must be a positive integer"):
        _run(c, _feats(2), im8, beam=0)
    with pytest.raises(ValueError, match="needs the integer reference"):
        _run(c, _feats(2), None)


# -- end to end on the functional backend -----------------------------------------------------

@pytest.mark.parametrize("which,hw_bits", [("im8", 8), ("im4", 8), ("im4", 4)])
def test_greedy_end_to_end_bit_exact(which, hw_bits, request):
    im = request.getfixturevalue(which)
    cfg = fit_config(TINY.replace(weight_bits=hw_bits), im)
    c = compile_rnnt(cfg, im)
    feats = _feats(12, seed=3)
    res = _run(c, feats, im, check="all")
    want = greedy_ids(im.decoder(), feats[None])[0]
    assert res["ids"] == want and res["bit_exact"] is True
    assert res["frames"] == 12 and res["runs"]["encoder"] == 12
    # one joint per frame, plus one per label (a frame closed by max_symbols has no blank)
    assert 12 <= res["runs"]["joint"] <= 12 + len(want)
    assert res["runs"]["predict"] == len(want) + 1
    assert res["compared"] > 12 * (c.dims["J"] + 4 * c.dims["H"])
    assert res["counters"]["instr_load"] == 0 and res["counters"]["dram_bytes"] == 0
    # "outputs" reads less and decodes the same
    res2 = _run(c, feats, im)
    assert res2["ids"] == want and res2["port_words"]["checks"] < res["port_words"]["checks"]
    assert res2["cycles"] == res["cycles"]


def test_some_labels_are_emitted(im8, cfg8):
    """The fixtures decode non-trivially (otherwise the tests above prove little)."""
    feats = _feats(12, seed=3)
    assert len(greedy_ids(im8.decoder(), feats[None])[0]) >= 3


def test_resident_and_streamed_agree(im4):
    cfg = fit_config(TINY, im4)
    feats = _feats(8, seed=4)
    res = _run(compile_rnnt(cfg, im4), feats, im4, check="all")
    stream = _run(compile_rnnt(cfg, im4, residency="streamed"), feats, im4, check="all")
    small = cfg.replace(wsram_depth=cfg.wsram_depth // 2, param_depth=cfg.param_depth // 4)
    auto = compile_rnnt(small, im4)
    assert auto.residency == {"weights": "streamed", "params": "streamed"}
    both = _run(auto, feats, im4, check="all")
    assert res["ids"] == stream["ids"] == both["ids"]
    assert res["counters"]["instr_load"] == 0
    n_mv = res["counters"]["instr_matvec"]
    assert stream["counters"]["instr_load"] == n_mv
    assert both["counters"]["instr_load"] == 2 * n_mv
    assert stream["counters"]["dram_bytes"] > 0
    for p in ("encoder", "predict", "joint"):
        assert stream["cycles"][p] > res["cycles"][p]
    assert res["init_cycles"] > stream["init_cycles"]
    assert stream["counters"]["load_cycles"] > 0 == res["counters"]["load_cycles"]


@pytest.mark.parametrize("k", [16, 32])
def test_other_word_widths(im8, k):
    """K that does not divide the model's widths: padded words, zero weight columns."""
    cfg = fit_config(TINY.replace(k=k), im8)
    c = compile_rnnt(cfg, im8)
    feats = _feats(6, seed=5)
    res = _run(c, feats, im8, check="all")
    assert res["ids"] == greedy_ids(im8.decoder(), feats[None])[0]


@pytest.mark.parametrize("beam,nbest", [(2, 2), (4, 4), (4, 1)])
def test_beam_nbest_equals_model_decode(im8, cfg8, beam, nbest):
    c = compile_rnnt(cfg8, im8)
    feats = _feats(10, seed=6)
    res = _run(c, feats, im8, beam=beam, nbest=nbest, check="all")
    want = beam_search(im8.decoder(), feats, beam=beam, nbest=nbest)
    assert res["nbest"] == want
    assert res["port_words"]["state_save"] > 0 and res["port_words"]["state_restore"] > 0


def test_greedy_is_beam_one(im4):
    cfg = fit_config(TINY, im4)
    c = compile_rnnt(cfg, im4)
    feats = _feats(8, seed=7)
    res = _run(c, feats, im4)
    want = beam_search(im4.decoder(), feats, beam=1, nbest=1)
    assert res["nbest"][0][0] == want[0][0]


# -- mismatches are named -------------------------------------------------------------------

def _patch_record(c, name, row, **fields):
    """A copy of the image with matrix ``name``'s parameter record of ``row`` changed."""
    p = c.matrices[name]
    B = c.config.dram_bytes_per_cycle
    for lane, slots in enumerate(p.placement):
        if row in slots:
            off = p.params["dram_addr"] * B + 16 * (lane * p.n_slots + slots.index(row))
    dram = bytearray(c.image.dram)
    rec = ParamRecord.unpack(bytes(dram[off:off + 16]))
    rec = ParamRecord(**{**rec.__dict__, **fields})
    dram[off:off + 16] = rec.pack()
    img = MemoryImage(c.config, bytes(dram), c.image.program, c.image.manifest)
    return CompiledRNNT.from_image(img)


def test_mismatch_names_frame_program_instruction_tensor(im8, cfg8):
    c = compile_rnnt(cfg8, im8)
    q = im8.matrices["out"]
    bad = _patch_record(c, "out", 3, bias=int(q.bias[3]) + 5000)
    mv_pc = c.programs["joint"]["pc"] + 2
    with pytest.raises(RNNTMismatch, match=rf"mismatch at frame 0, program 'joint', written by "
                                           rf"pc {mv_pc} \(MATVEC .*\): tensor LOGITS\[3\] is "
                                           rf"-?\d+ on the hardware, -?\d+ in the integer "
                                           rf"reference") as e:
        _run(bad, _feats(3), im8)
    assert (e.value.frame, e.value.program, e.value.tensor, e.value.index) == (0, "joint",
                                                                               "LOGITS", 3)
    assert e.value.expected != e.value.got
    # an encoder layer: caught at H1 / its gates with check="all", at ENC with "outputs"
    q = im8.matrices["encoder.1"]
    bad = _patch_record(c, "encoder.1", 2 * 16 + 1, bias=int(q.bias[33]) + 10**6)
    with pytest.raises(RNNTMismatch, match=r"frame 0, program 'encoder', written by pc \d+ "
                                           r"\(LUT.TANH .*\): tensor encoder.1.g\[1\]"):
        _run(bad, _feats(3), im8, check="all")
    with pytest.raises(RNNTMismatch, match=r"program 'encoder'.*tensor ENC\["):
        _run(bad, _feats(3), im8)
    # the prediction network, before the first frame
    q = im8.matrices["pred_proj"]
    bad = _patch_record(c, "pred_proj", 0, bias=int(q.bias[0]) + 10**6)
    with pytest.raises(RNNTMismatch, match=r"mismatch before the first frame, program "
                                           r"'predict', written by pc \d+ \(MATVEC .*\): tensor "
                                           r"PRED\[0\]"):
        _run(bad, _feats(3), im8)


def test_layer_labels_and_cycles_per_layer(im8, cfg8):
    """Every instruction has a layer (compiler) and the functional model's cycles per pc add
    up to the programs' cycles, less one cycle per run (leaving idle)."""
    c = compile_rnnt(cfg8, im8)
    where = c.layer_of()
    assert sorted(where) == list(range(c.stats["instructions"]))
    assert [lab for _, lab in (where[c.programs["predict"]["pc"] + i]
                               for i in range(c.programs["predict"]["length"]))] == \
        ["embedding"] + ["pred_lstm"] * 5 + ["pred_proj", "end"]
    assert [where[c.programs["joint"]["pc"] + i][1] for i in range(4)] == \
        ["joint", "joint", "out", "end"]
    assert CompiledRNNT.from_image(c.image).layer_of() == where
    be = backends.get_backend("functional", cfg8)
    routine = partial(rnnt_host.run_utterance, crnnt=c, feats_q=_feats(4), int_model=im8)
    res = be.run(routine)
    pcs = be.driver.machine.pc_cycles
    for p in ("encoder", "predict", "joint"):
        got = sum(v for pc, v in pcs.items() if where[pc][0] == p)
        assert got == res["cycles"][p] - res["runs"][p]


class _TracingDriver:
    """A functional driver that records the host's progress and trace calls."""

    def __init__(self, cfg, log):
        from sim.functional import FunctionalDriver
        self._d = FunctionalDriver(cfg)
        self.log = log

    def __getattr__(self, name):
        return getattr(self._d, name)

    async def run(self, pc, arg=0):
        self.log.append(("run", pc))
        return await (self._d.run(pc, arg) if arg else self._d.run(pc))

    async def trace(self, on):
        self.log.append(("trace", on))


@pytest.mark.parametrize("window, beam", [((1, 3), 1), ((2, 9), 2)])
def test_progress_and_trace_window(im8, cfg8, window, beam):
    import asyncio
    c = compile_rnnt(cfg8, im8)
    log, frames = [], []
    d = _TracingDriver(cfg8, log)
    asyncio.run(rnnt_host.run_utterance(d, c, _feats(4), im8, beam=beam, on_frame=frames.append,
                                        trace_frames=window))
    assert frames == [0, 1, 2, 3, 4]
    enc = c.programs["encoder"]["pc"]
    runs = [e for e in log if e[0] == "trace" or e[1] == enc]   # trace calls and encoder runs
    a, b = window[0], min(window[1], 4)
    on = runs.index(("trace", True))
    assert runs[:on].count(("run", enc)) == a                     # before frame a's encoder
    off = runs.index(("trace", False))
    assert runs[on:off].count(("run", enc)) == b - a
    assert log.count(("trace", True)) == log.count(("trace", False)) == 1
    with pytest.raises(DriverError, match="cannot switch waves on and off"):
        _run(c, _feats(2), im8, trace_frames=(0, 1))
