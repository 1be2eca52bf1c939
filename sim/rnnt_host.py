"""The RNN-T host program: the decoder loop, written once, async, against
:class:`~sim.driver.Driver`.

It drives a :class:`compiler.rnnt.CompiledRNNT` image on any backend: per frame it writes the
feature codes into ``X`` and runs ``encoder``; the search runs ``joint`` (reading the logits)
and ``predict`` (with ``ARG`` = the token) as it needs them. Greedy decoding is
:func:`model.decode.greedy_ids` for one utterance; beam search is
:func:`model.decode.beam_search_hyps` step for step (same pool order, same ties, the same
``log_softmax`` on the same batch shapes), so on bit-exact logits both give exactly the
transcript and n-best of :class:`model.intref.IntDecoder`.

Beam search keeps every hypothesis's prediction state on the host: after each ``predict`` it
reads ``PRED``, ``HP`` and ``CP`` (the raw words) and writes them back before a ``predict`` or
``joint`` of a hypothesis whose state is not the one in the SRAM. Those host-port words are
counted separately (``port_words``).

Checking
--------
With an :class:`~model.intref.IntRNNT` the host runs the integer reference in lock step and
compares every vector it reads, exactly. ``check``:

``"outputs"``  the program outputs: ``ENC`` after ``encoder``, ``PRED`` after ``predict``,
               ``LOGITS`` after ``joint`` (the logits are read in any case: the search needs
               them)
``"all"``      also ``H_l``, ``C_l`` (every layer) and the last layer's gates after
               ``encoder``; ``E``, the gates, ``HP``, ``CP`` after ``predict``; ``S`` (the
               joint's tanh) after ``joint``
``"none"``     only what the search needs (no reference)

The first mismatch raises :class:`RNNTMismatch`, naming the frame, the program, the
instruction that wrote the vector (pc and assembly), the tensor and element with both values.
"""

from __future__ import annotations

import numpy as np
import torch

from model.decode import MAX_SYMBOLS, beam_step, final_beam
from model.text import decode as decode_ids
from rtl import isa
from rtl.memfmt import ImageError

from .driver import Driver, DriverError, counter_deltas
from .host import load_image

__all__ = ["RNNTMismatch", "load_rnnt", "run_utterance", "CHECKS"]

CHECKS = ("none", "outputs", "all")


class RNNTMismatch(DriverError):
    """A value read from the hardware differs from the integer reference.

    Attributes: ``frame`` (``None`` before the first frame), ``program``, ``pc``
    (the instruction that wrote the vector), ``tensor``, ``index``, ``expected``, ``got``.
    """

    def __init__(self, message, *, frame, program, pc, tensor, index, expected, got):
        super().__init__(message)
        self.frame, self.program, self.pc, self.tensor = frame, program, pc, tensor
        self.index, self.expected, self.got = index, expected, got


# -- helpers ----------------------------------------------------------------------------------

def _pack(K: int, values, words: int) -> list[int]:
    """int8 values as ``words`` activation words (zero padded)."""
    buf = np.zeros(words * K, dtype=np.int8)
    v = np.asarray(values, dtype=np.int64)
    buf[:len(v)] = v.astype(np.int8)
    raw = buf.tobytes()
    return [int.from_bytes(raw[i * K:(i + 1) * K], "little") for i in range(words)]


def _unpack(K: int, words, n: int) -> np.ndarray:
    raw = b"".join(int(w).to_bytes(K, "little") for w in words)
    return np.frombuffer(raw, dtype=np.int8)[:n].astype(np.int64)


class _Session:
    """One driver, one compiled model, the reference in lock step and the bookkeeping."""

    def __init__(self, driver: Driver, crnnt, int_model, check: str, *, on_frame=None,
                 trace_frames=None):
        if check not in CHECKS:
            raise ValueError(f"check must be one of {', '.join(CHECKS)}, not {check!r}")
        if check != "none" and int_model is None:
            raise ValueError(f"check={check!r} needs the integer reference (int_model)")
        self.d = driver
        self.c = crnnt
        self.cfg = crnnt.config
        self.K = self.cfg.k
        self.im = int_model if check != "none" else None
        self.check = check
        self.frame = None
        self.port = {"features": 0, "state_save": 0, "state_restore": 0, "outputs": 0,
                     "checks": 0, "init": 0}
        self.runs = {name: 0 for name in ("encoder", "predict", "joint")}
        self.cycles = {name: 0 for name in ("encoder", "predict", "joint")}
        self.compared = 0
        self.on_frame = on_frame
        self.trace_frames = trace_frames
        self.tracing = False

    async def begin_frame(self, t: int) -> None:
        """Called before frame ``t``'s encoder: reports progress (``t`` frames done) and
        switches waves on at the first frame of ``trace_frames`` and off at the end of it."""
        if self.on_frame is not None:
            self.on_frame(t)
        self.frame = t
        if self.trace_frames is not None:
            a, b = self.trace_frames
            if t == a:
                await self.set_trace(True)
            elif t == b:
                await self.set_trace(False)

    async def set_trace(self, on: bool) -> None:
        if on != self.tracing:
            await self.d.trace(on)
            self.tracing = on

    # -- transfers ----------------------------------------------------------------------------

    async def write(self, name: str, words: list[int], purpose: str) -> None:
        r = self.c.layout[name]
        if len(words) != r.words:
            raise ValueError(f"{name} takes {r.words} words, not {len(words)}")
        await self.d.write_act(r.base, words)
        self.port[purpose] += len(words)

    async def read_words(self, name: str, purpose: str) -> list[int]:
        r = self.c.layout[name]
        words = await self.d.read_act(r.base, r.words)
        self.port[purpose] += len(words)
        return words

    async def read(self, name: str, purpose: str) -> np.ndarray:
        r = self.c.layout[name]
        return _unpack(self.K, await self.read_words(name, purpose), r.elems)

    async def read_cell(self, name: str) -> np.ndarray:
        return _cell_values(self.K, await self.read_words(name, "checks"),
                            self.c.layout[name].elems)

    async def read_gates(self, n_units: int) -> dict:
        r = self.c.layout["GATES"]
        g = _unpack(self.K, await self.read_words("GATES", "checks"), r.words * self.K)
        nw = -(-n_units // self.K) * self.K
        return {b: g[i * nw:i * nw + n_units] for i, b in enumerate("ifgo")}

    async def run(self, program: str, arg: int = 0) -> int:
        pc = self.c.programs[program]["pc"]
        # ``arg`` only when needed: drivers of designs without the ARG register take run(pc)
        cyc = await (self.d.run(pc, arg) if arg else self.d.run(pc))
        self.runs[program] += 1
        self.cycles[program] += cyc
        return cyc

    # -- comparison ---------------------------------------------------------------------------

    def compare(self, program: str, tensor: str, got, want, writer: str | None = None) -> None:
        got = np.asarray(got, dtype=np.int64)
        want = np.asarray(torch.as_tensor(want).to(torch.int64).reshape(-1))
        if got.shape != want.shape:
            raise RNNTMismatch(f"{self._where(program)}: tensor {tensor}: {got.shape[0]} values "
                               f"read, the reference has {want.shape[0]}",
                               frame=self.frame, program=program, pc=None, tensor=tensor,
                               index=None, expected=None, got=None)
        self.compared += got.size
        bad = np.flatnonzero(got != want)
        if len(bad):
            i = int(bad[0])
            wname = writer or tensor
            pc = self.c.writers.get(program, {}).get(wname)
            instr = ""
            if pc is not None:
                word = self.c.image.program_words[pc]
                instr = f", written by pc {pc} ({isa.disassemble(self.cfg, word)})"
            raise RNNTMismatch(
                f"{self._where(program)}{instr}: tensor {tensor}[{i}] is {int(got[i])} on the "
                f"hardware, {int(want[i])} in the integer reference "
                f"({len(bad)} of {got.size} elements differ)",
                frame=self.frame, program=program, pc=pc, tensor=tensor, index=i,
                expected=int(want[i]), got=int(got[i]))

    def _where(self, program: str) -> str:
        f = "before the first frame" if self.frame is None else f"at frame {self.frame}"
        return f"mismatch {f}, program {program!r}"


# -- the programs as coroutines, with their reference -----------------------------------------

class _Ref:
    """The integer reference's state beside the hardware's (all int64 tensors)."""

    def __init__(self, im):
        self.im = im
        d = im.hparams
        self.h = [torch.zeros(d["enc_hidden"], dtype=torch.int64) for _ in range(d["enc_layers"])]
        self.c = [torch.zeros(d["enc_hidden"], dtype=torch.int64) for _ in range(d["enc_layers"])]
        self.enc = None


async def _encoder(s: _Session, ref: _Ref | None, x: np.ndarray) -> None:
    """Write frame ``x`` and run ``encoder``; check it against the reference."""
    await s.write("X", _pack(s.K, x, s.c.layout["X"].words), "features")
    await s.run("encoder")
    if ref is None:
        return
    im = ref.im
    inp = torch.as_tensor(x, dtype=torch.int64)
    steps = []
    for l in range(len(ref.h)):
        st = im.lstm_step(f"encoder.{l}", inp, ref.h[l], ref.c[l])
        ref.h[l], ref.c[l] = st.h, st.c
        steps.append(st)
        inp = st.h
    ref.enc = im.project("enc_proj", inp)
    if s.check == "all":                      # in the order the program computes them
        L = len(ref.h)
        for l in range(L):
            if l == L - 1:                    # GATES holds the last layer's
                gates = await s.read_gates(s.c.dims["H"])
                for b in "ifgo":
                    s.compare("encoder", f"encoder.{l}.{b}", gates[b], getattr(steps[l], b),
                              writer=f"GATES{l}.{b}")
            s.compare("encoder", f"C{l}", await s.read_cell(f"C{l}"), ref.c[l])
            s.compare("encoder", f"H{l}", await s.read(f"H{l}", "checks"), ref.h[l])
    s.compare("encoder", "ENC", await s.read("ENC", "checks"), ref.enc)


def _cell_values(K: int, words, n: int) -> np.ndarray:
    """``c = hi*256 + (lo & 0xFF)`` from the words of two cell planes."""
    half = len(words) // 2
    lo = _unpack(K, words[:half], n)
    hi = _unpack(K, words[half:], n)
    return hi * 256 + (lo & 0xFF)


async def _predict(s: _Session, token: int, ref_state, *, save: bool = False):
    """Run ``predict`` for ``token`` (the state in ``HP``/``CP`` is the hypothesis's).

    Returns ``(ref, hw)``: the reference's ``(pred, h, c)`` after it (``None`` without a
    reference) and, with ``save``, the new state's raw words ``{"PRED", "HP", "CP"}`` (read
    once, used for the checks as well).
    """
    await s.run("predict", arg=int(token))
    hw = None
    if save:
        hw = {n: tuple(await s.read_words(n, "state_save")) for n in ("PRED", "HP", "CP")}
    if ref_state is None:
        return None, hw
    im = s.im
    K, lay = s.K, s.c.layout
    _, h, c = ref_state
    e = im.embedding.to(torch.int64)[int(token)]
    st = im.lstm_step("pred_lstm", e, h, c)
    pred = im.project("pred_proj", st.h)
    if s.check == "all":                      # in the order the program computes them
        s.compare("predict", "E", await s.read("E", "checks"), e)
        gates = await s.read_gates(s.c.dims["P"])
        for b in "ifgo":
            s.compare("predict", f"pred_lstm.{b}", gates[b], getattr(st, b),
                      writer=f"GATES.{b}")
        hp = (_unpack(K, hw["HP"], lay["HP"].elems) if hw else await s.read("HP", "checks"))
        cp = (_cell_values(K, hw["CP"], lay["CP"].elems) if hw else await s.read_cell("CP"))
        s.compare("predict", "CP", cp, st.c)
        s.compare("predict", "HP", hp, st.h)
    got = (_unpack(K, hw["PRED"], lay["PRED"].elems) if hw else await s.read("PRED", "checks"))
    s.compare("predict", "PRED", got, pred)
    return (pred, st.h, st.c), hw


async def _joint(s: _Session, ref: _Ref | None, pred_ref) -> torch.Tensor:
    """Run ``joint``; returns the logit codes (int64, ``(V,)``) read from the hardware."""
    await s.run("joint")
    logits = torch.from_numpy(await s.read("LOGITS", "outputs"))
    if ref is not None:
        im = s.im
        sum_ = (ref.enc + pred_ref).clamp(-128, 127)
        j = im.tanh_lut.to(torch.int64)[sum_ + 128]
        if s.check == "all":
            s.compare("joint", "S", await s.read("S", "checks"), j)
        s.compare("joint", "LOGITS", logits.numpy(), im.project("out", j))
    return logits


def _log_softmax(crnnt, logits: list[torch.Tensor]) -> torch.Tensor:
    """:meth:`IntDecoder.join` then ``log_softmax``, on the batch as the search forms it."""
    x = torch.stack(logits).to(torch.float32).mul_(crnnt.logit_step)
    return torch.log_softmax(x, -1)


# -- entry points -----------------------------------------------------------------------------

async def load_rnnt(driver: Driver, crnnt) -> dict:
    """Load the image, copy the embedding table into the activation SRAM and run ``init``.

    Returns ``{"cycles": init cycles, "port_words": embedding words written}``.
    """
    await load_image(driver, crnnt.image)
    emb = crnnt.embedding_words()
    await driver.write_act(crnnt.embedding["act_base"], emb)
    cycles = await driver.run(crnnt.programs["init"]["pc"])
    return {"cycles": cycles, "port_words": len(emb)}


async def _zero(s: _Session, names, purpose) -> None:
    for n in names:
        await s.write(n, [0] * s.c.layout[n].words, purpose)


async def run_utterance(driver: Driver, crnnt, feats_q, int_model=None, *, beam: int = 1,
                        nbest: int | None = None, max_symbols: int = MAX_SYMBOLS,
                        check: str = "outputs", load: bool = True,
                        verify_model: bool = True, on_frame=None,
                        trace_frames: tuple[int, int] | None = None, fusion=None) -> dict:
    """Decode one utterance on the accelerator.

    Parameters
    ----------
    driver : Driver
    crnnt : compiler.rnnt.CompiledRNNT
    feats_q : array_like of int, shape ``(T, F)``
        int8 feature codes (:func:`model.frontend.features_int8`).
    int_model : model.intref.IntRNNT, optional
        The reference every read is compared with (required unless ``check="none"``).
    beam : int
        1: greedy; more: beam search with that many hypotheses.
    nbest : int, optional
        Hypotheses returned (default ``beam``; ``1 <= nbest <= beam``).
    max_symbols : int
        Labels per frame at most (:data:`model.decode.MAX_SYMBOLS`).
    check : {"outputs", "all", "none"}
    load : bool
        Load the image and run ``init`` first (pass ``False`` when it already is).
    verify_model : bool
        Refuse (:class:`~rtl.memfmt.ImageError`) an image whose model hash is not
        ``int_model``'s.
    on_frame : callable, optional
        ``on_frame(n)`` with the number of frames decoded so far, before each frame and once
        at the end (``n = T``): a progress hook (it runs wherever the routine runs: in another
        process for the cocotb backends, so pass it only to in-process backends).
    trace_frames : (int, int), optional
        Frames ``[a, b)`` to record waves for: the host calls the driver's ``trace(True)``
        before frame ``a``'s encoder and ``trace(False)`` before frame ``b``'s (or at the end).
        The driver must have a ``trace`` coroutine (:class:`sim.window.WindowDriver`: the
        window runs on the HDL simulator, the rest on the functional model); ``None`` leaves
        tracing to the backend.
    fusion : model.lm.Fusion, optional
        A language model fused into the beam search's scores on the host, as in
        :func:`model.decode.beam_search_hyps` (the hardware's outputs are unaffected).

    Returns
    -------
    dict
        ``text``, ``ids``, ``nbest`` (``[(text, score)]``; greedy: one entry, scored with the
        log-probabilities of the symbols it chose, so a frame closed by ``max_symbols``
        contributes no blank, unlike a beam search's path), ``frames``, ``bit_exact``
        (``True`` when checked; ``None`` unchecked),
        ``compared`` (values compared), ``runs`` / ``cycles`` (per program),
        ``cycles_total`` (their sum), ``init_cycles``, ``port_words``
        (host-port words by purpose), ``counters`` (differences over the utterance, ``init``
        excluded).

    Raises
    ------
    RNNTMismatch
        At the first value that differs from the reference.
    rtl.memfmt.ImageError
        The image was compiled from another model, or for another configuration.
    """
    if not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be a positive integer, not {beam!r}")
    nbest = beam if nbest is None else nbest
    if not isinstance(nbest, int) or not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be between 1 and beam ({beam}), not {nbest!r}")
    if fusion is not None and beam == 1:
        raise ValueError("a language model is fused into the beam search: use beam >= 2")
    x = np.asarray(feats_q.numpy() if isinstance(feats_q, torch.Tensor) else feats_q)
    F = crnnt.dims["F"]
    if x.ndim != 2 or x.shape[1] != F or x.dtype.kind not in "iu":
        raise ValueError(f"feats_q must be integer codes of shape (T, {F}), not {x.dtype} "
                         f"{tuple(x.shape)}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError("feats_q holds values outside int8")
    if int_model is not None and verify_model:
        from compiler.rnnt import model_hash
        h = model_hash(int_model)
        if h != crnnt.model_hash:
            raise ImageError(f"memory image compiled from model {crnnt.model_hash}, but the "
                             f"reference model is {h}; recompile the image from this model")
    if trace_frames is not None:
        a, b = trace_frames
        if not (isinstance(a, int) and isinstance(b, int) and 0 <= a < b):
            raise ValueError(f"trace_frames must be (a, b) with 0 <= a < b, not {trace_frames!r}")
        if not callable(getattr(driver, "trace", None)):
            raise DriverError(f"{type(driver).__name__} cannot switch waves on and off (no "
                              f"trace method): waves limited to frames need a backend with it")
    s = _Session(driver, crnnt, int_model, check, on_frame=on_frame, trace_frames=trace_frames)
    init = {"cycles": 0, "port_words": 0}
    if load:
        init = await load_rnnt(driver, crnnt)
        s.port["init"] += init["port_words"]
    cnt0 = await driver.counters()
    ref = _Ref(s.im) if s.im is not None else None
    L = crnnt.dims["L"]
    await _zero(s, [f"H{l}" for l in range(L)] + [f"C{l}" for l in range(L)], "state_restore")
    await _zero(s, ["HP", "CP"], "state_restore")
    blank = crnnt.dims["blank"]
    zero_p = torch.zeros(crnnt.dims["P"], dtype=torch.int64)
    ref0 = (None, zero_p, zero_p) if ref is not None else None
    ref0, hw0 = await _predict(s, blank, ref0, save=beam > 1)
    if beam == 1:
        ids, score = await _greedy(s, ref, ref0, x, max_symbols)
        hyps = [(decode_ids(ids), score)]
    else:
        final = await _beam(s, ref, ref0, hw0, x, beam, max_symbols, fusion)
        ids = list(final[0].tokens)
        hyps = [(decode_ids(h.tokens), h.score) for h in final[:nbest]]
    await s.set_trace(False)
    if on_frame is not None:
        on_frame(int(x.shape[0]))
    cnt1 = await driver.counters()
    return {
        "text": hyps[0][0], "ids": ids, "nbest": hyps, "frames": int(x.shape[0]),
        "bit_exact": True if ref is not None else None, "compared": s.compared,
        "runs": s.runs, "cycles": s.cycles,
        "cycles_total": sum(s.cycles.values()),
        "init_cycles": init["cycles"], "port_words": s.port,
        "counters": counter_deltas(cnt0, cnt1, driver.cfg.counter_bits),
    }


async def _greedy(s: _Session, ref, ref_state, x, max_symbols):
    """:func:`model.decode.greedy_ids` for one utterance; returns (ids, path score)."""
    blank = s.c.dims["blank"]
    out: list[int] = []
    score = 0.0
    for t in range(x.shape[0]):
        await s.begin_frame(t)
        await _encoder(s, ref, x[t])
        for _ in range(max_symbols):
            logits = await _joint(s, ref, ref_state[0] if ref_state else None)
            lp = _log_softmax(s.c, [logits])
            k = int(lp.argmax(-1)[0])
            score += float(lp[0, k].to(torch.float64))
            if k == blank:
                break
            ref_state, _ = await _predict(s, k, ref_state)
            out.append(k)
    return out, score


class _Hyp:
    """One beam entry: tokens, score, the hardware state words, the reference state."""

    __slots__ = ("tokens", "score", "hw", "ref", "link")

    def __init__(self, tokens, score, hw, ref, link=None):
        self.tokens, self.score, self.hw, self.ref, self.link = tokens, score, hw, ref, link


async def _restore(s: _Session, hw: dict, names, resident: dict) -> None:
    """Write the named parts of a saved state unless the SRAM already holds them."""
    for n in names:
        if resident.get(n) != hw[n]:
            await s.write(n, list(hw[n]), "state_restore")
            resident[n] = hw[n]


async def _beam(s: _Session, ref, ref0, hw0, x, beam: int, max_symbols: int,
                fusion=None) -> list[_Hyp]:
    """:func:`model.decode.beam_search_hyps`, with the stages on the hardware."""
    blank = s.c.dims["blank"]
    resident = dict(hw0)                 # the words the SRAM currently holds, by vector
    beam_hyps = [_Hyp((), 0.0, hw0, ref0)]
    for t in range(x.shape[0]):
        await s.begin_frame(t)
        await _encoder(s, ref, x[t])
        A, B = beam_hyps, []
        for r in range(max_symbols + 1):
            if not A:
                break
            logits = []
            for h in A:
                await _restore(s, h.hw, ("PRED",), resident)
                logits.append(await _joint(s, ref, h.ref[0] if h.ref else None))
            lp = _log_softmax(s.c, logits).to(torch.float64).tolist()
            B, grow = beam_step(A, B, lp, beam=beam, blank=blank, extend=r < max_symbols,
                                fusion=fusion,
                                close=lambda h, score, t=t: _Hyp(
                                    h.tokens, score, h.hw, h.ref, (h.link, t, blank)))
            A = []
            for score, h, k in grow:
                await _restore(s, h.hw, ("HP", "CP"), resident)
                ref1, hw1 = await _predict(s, k, h.ref, save=True)
                resident.update(hw1)
                A.append(_Hyp(h.tokens + (k,), score, hw1, ref1, (h.link, t, k)))
        beam_hyps = B
    return final_beam(beam_hyps, fusion)
