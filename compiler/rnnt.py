"""Compile the integer RNN-T (:class:`model.intref.IntRNNT`) onto a :class:`HardwareConfig`.

This lowers the whole speech model as ``docs/rnnt-mapping.md`` describes: every matrix through
the matvec compiler's machinery (rows balanced across lanes, compressed weight stream,
parameter records: :func:`compiler.matvec.layer_streams`), the sigmoid and tanh tables into
the LUT memory, the embedding table into the activation SRAM, and four programs:

``init``     (once) ``LOAD.LUT``; the resident weights and parameter records; ``END``
``encoder``  (per frame; the host writes ``X``) per layer ``l``: ``MATVEC z_l -> GATES``,
             ``LUT`` sigmoid ``i, f``, tanh ``g``, sigmoid ``o`` (in place), ``CELL GATES, C_l ->
             H_l``; then ``MATVEC enc_proj H_{L-1} -> ENC``; ``END``
``predict``  (``ARG`` = the token) ``MOVE.INDEXED EMB -> E``, the LSTM on ``[E; HP]`` as
             above (cell state ``CP``), ``MATVEC pred_proj HP -> PRED``; ``END``
``joint``    ``VADD ENC, PRED -> S``, ``LUT`` tanh ``S``, ``MATVEC out S -> LOGITS``; ``END``

Dimension letters: ``F`` features, ``L`` encoder layers, ``H`` encoder width, ``E`` embedding
width, ``P`` prediction width, ``J`` joint width, ``V`` vocabulary (as :mod:`model.intref`);
``K`` elements per activation word; ``nX = ceil(X / K)`` words of a vector of ``X`` elements.

Activation SRAM layout
----------------------
Every vector starts on a word boundary and takes ``ceil(len / K)`` words, in this order (the
doc's picture, generalised to any ``K``)::

    X (nF) H_0 .. H_{L-1} (nH each)        contiguous: z_0 = [X; H_0], z_l = [H_{l-1}; H_l]
    C_0 .. C_{L-1} (2 nH each: lo, hi)     GATES (4 max(nH, nP))   ENC (nJ)
    EMB (V nE)   E (nE) HP (nP)            contiguous: the prediction LSTM's input [E; HP]
    CP (2 nP)    PRED (nJ)   S (nJ)   LOGITS (nV)

A matrix's columns are laid out in this *element* space: where an input vector does not fill
its last word, the weight matrix gets zero columns for the padding elements, so the MATVEC
reads whole words and the padding (whatever the vector unit left there) meets zero weights.
An LSTM's gate block ``b`` (``i, f, g, o``) writes its unit ``u`` to element ``b*nH*K + u`` of
``GATES`` (each block word-aligned for ``LUT`` and ``CELL``); the projections write row ``r`` to
element ``r``.

Weights: resident or streamed
-----------------------------
If every matrix's row slots fit the weight SRAM together (``sum n_slots * n_words <=
wsram_depth``), ``init`` loads them once at consecutive bases ("resident"). Otherwise all
matrices share weight-SRAM base 0 and each MATVEC is preceded by the ``LOAD`` of its weights,
every step ("streamed"). Parameter records are decided the same way against
``param_depth``, independently (they are 16 bytes per row: resident far more often).
``residency="streamed"`` forces streamed weights (to measure them on a configuration where
they would fit); ``residency="resident"`` refuses to stream anything.

DRAM layout
-----------
From word 0: the LUT stream (``LUT_TABLES * 256`` bytes as 16-byte records), the embedding
table (``V * nE`` activation words, ``K`` bytes each, which the host copies into ``EMB`` once),
then per matrix (execution order) its weight stream and its parameter stream, each starting on
a DRAM word.

Manifest (``image.manifest``)
-----------------------------
``programs`` (entry points, as :class:`rtl.memfmt.MemoryImage` expects) and ``rnnt``: ``format``
(:data:`RNNT_FORMAT`), ``model_hash`` (:func:`model_hash`), ``config_digest``,
``memfmt_version``, ``dims``, ``layout``, ``residency``, ``matrices`` (placement, bases,
streams), ``lut``, ``embedding``, ``writers`` (for each program, the pc of the instruction that
writes each vector: what a mismatch report names), ``layers`` (for each program, the layer of
each instruction: :meth:`CompiledRNNT.layer_of`, what per-layer cycle reports group by),
``logit_step``; and ``stats``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import FORMAT_VERSION, ImageError, MemoryImage

from .matvec import CompileError, LayerStreams, _ceil_div, _next_pow2, layer_streams

__all__ = ["RNNT_FORMAT", "CompiledRNNT", "Region", "MatrixPlan", "compile_rnnt",
           "model_hash", "fit_config", "RESIDENCY"]

#: Version of the RNN-T lowering recorded in the manifest (layout, programs, DRAM sections);
#: bumped whenever an image compiled before could be misread.
RNNT_FORMAT = 1
#: Accepted values of ``compile_rnnt(residency=...)``.
RESIDENCY = ("auto", "resident", "streamed")

_LSTM_BLOCKS = ("i", "f", "g", "o")


# -- descriptions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    """A vector in the activation SRAM: ``words`` words from word ``base``; ``elems`` of its
    ``words * K`` elements are meaningful."""

    base: int
    words: int
    elems: int

    @property
    def end(self) -> int:
        return self.base + self.words


@dataclass
class MatrixPlan:
    """Where one matrix lives and how its MATVEC reads and writes.

    Attributes
    ----------
    name : str
    rows, cols : int
        ``R`` and ``C`` of the model's matrix.
    w_bits : int
    in_base, n_words : int
        Input words (the concatenated input vectors).
    out_base : int
        Output word base; row ``r`` writes element ``out_base*K + out_index[r]``.
    out_index : list of int
    n_slots : int
    wsram_base, param_base : int
    weights, params : dict
        ``dram_addr``, ``dram_words``, ``bytes``.
    placement : list of list of int
        ``[L][S]`` rows per lane slot (``-1`` padding).
    nnz : int
    lane_cost : list of int
    """

    name: str
    rows: int
    cols: int
    w_bits: int
    in_base: int
    n_words: int
    out_base: int
    out_index: list
    n_slots: int
    wsram_base: int
    param_base: int
    weights: dict
    params: dict
    placement: list
    nnz: int
    lane_cost: list

    @property
    def wsram_words(self) -> int:
        """Weight-SRAM words per lane."""
        return self.n_slots * self.n_words

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CompiledRNNT:
    """A compiled RNN-T: the memory image and everything the host needs to drive it.

    Attributes
    ----------
    image : rtl.memfmt.MemoryImage
    dims : dict
        ``F, L, H, E, P, J, V`` and ``blank``.
    layout : dict[str, Region]
        Activation-SRAM vectors: ``X``, ``H0``.., ``C0``.., ``GATES``, ``ENC``, ``EMB``, ``E``,
        ``HP``, ``CP``, ``PRED``, ``S``, ``LOGITS``.
    matrices : dict[str, MatrixPlan]
    residency : dict
        ``{"weights": "resident" | "streamed", "params": ...}``.
    model_hash : str
    logit_step : float
    embedding : dict
        ``dram_addr`` (word), ``act_base``, ``words``: the table the host copies in once.
    writers : dict[str, dict[str, int]]
        Per program, the pc of the instruction writing each vector.
    stats : dict
    layers : dict[str, list[str]]
        Per program, the layer each instruction belongs to (:meth:`layer_of`).
    """

    image: MemoryImage
    dims: dict
    layout: dict
    matrices: dict
    residency: dict
    model_hash: str
    logit_step: float
    embedding: dict
    writers: dict
    stats: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)

    @property
    def config(self) -> HardwareConfig:
        return self.image.config

    @property
    def programs(self) -> dict:
        return self.image.manifest["programs"]

    def program(self, name: str) -> list[int]:
        """The instruction words of program ``name``."""
        p = self.programs[name]
        return self.image.program_words[p["pc"]:p["pc"] + p["length"]]

    def disassemble(self, name: str) -> list[str]:
        """Program ``name`` as assembly lines ``"pc: OP fields"``."""
        pc0 = self.programs[name]["pc"]
        return [f"{pc0 + i}: {isa.disassemble(self.config, w)}"
                for i, w in enumerate(self.program(name))]

    def layer_of(self) -> dict[int, tuple[str, str]]:
        """``{pc: (program, layer)}`` for every instruction: ``layer`` is a matrix name
        (``encoder.0`` .., ``enc_proj``, ``pred_lstm``, ``pred_proj``, ``out``: its LOADs,
        MATVEC and, for an LSTM, the LUTs and CELL after it), ``"embedding"`` (the
        ``MOVE.INDEXED``), ``"joint"`` (the joint's ``VADD`` and tanh), ``"lut"`` (the LUT
        load of ``init``) or ``"end"``. Empty for an image compiled without the labels."""
        out = {}
        for name, labels in self.layers.items():
            pc0 = self.programs[name]["pc"]
            out.update((pc0 + i, (name, lab)) for i, lab in enumerate(labels))
        return out

    def embedding_words(self) -> list[int]:
        """The embedding table as activation words (from the image's DRAM section)."""
        K = self.config.k
        B = self.config.dram_bytes_per_cycle
        start = self.embedding["dram_addr"] * B
        raw = self.image.dram[start:start + self.embedding["words"] * K]
        return [int.from_bytes(raw[i * K:(i + 1) * K], "little")
                for i in range(self.embedding["words"])]

    @classmethod
    def from_image(cls, image: MemoryImage, *, int_model=None,
                   expect: HardwareConfig | None = None) -> "CompiledRNNT":
        """Rebuild the description from an image's manifest, refusing an image that is not an
        RNN-T image of this format, was compiled for another configuration (``expect``) or
        from another model (``int_model``: its :func:`model_hash` must match).

        Raises
        ------
        rtl.memfmt.ImageError
        """
        man = image.manifest.get("rnnt")
        if not isinstance(man, dict):
            raise ImageError("memory image: not an RNN-T image (no 'rnnt' manifest section); "
                             "compile the model with compiler.rnnt.compile_rnnt")
        if man.get("format") != RNNT_FORMAT:
            raise ImageError(f"memory image: RNN-T format {man.get('format')}, this zeroskip "
                             f"reads format {RNNT_FORMAT}; recompile the model")
        if man.get("config_digest") != image.config.digest:
            raise ImageError(f"memory image: corrupt: RNN-T manifest config digest "
                             f"{man.get('config_digest')} != image config {image.config.digest}")
        if expect is not None and expect.digest != image.config.digest:
            raise ImageError(f"memory image: compiled for hardware config {image.config.digest}, "
                             f"but this hardware is {expect.digest}; recompile it for this "
                             f"config (same --hw)")
        if int_model is not None:
            h = model_hash(int_model)
            if h != man.get("model_hash"):
                raise ImageError(f"memory image: compiled from model {man.get('model_hash')}, but "
                                 f"the reference model is {h}; recompile the image from this "
                                 f"checkpoint")
        try:
            layout = {k: Region(*v) for k, v in man["layout"].items()}
            matrices = {k: MatrixPlan(**v) for k, v in man["matrices"].items()}
            return cls(image=image, dims=dict(man["dims"]), layout=layout, matrices=matrices,
                       residency=dict(man["residency"]), model_hash=man["model_hash"],
                       logit_step=float(man["logit_step"]), embedding=dict(man["embedding"]),
                       writers={p: dict(w) for p, w in man["writers"].items()},
                       stats=dict(image.manifest.get("stats", {})),
                       layers={p: list(v) for p, v in man.get("layers", {}).items()})
        except (KeyError, TypeError, ValueError) as e:
            raise ImageError(f"memory image: corrupt RNN-T manifest: {e!r}") from None


# -- the model hash -------------------------------------------------------------------------

def model_hash(int_model) -> str:
    """16 hex digits of SHA-256 over everything of an :class:`~model.intref.IntRNNT` that the
    hardware computes with: hyper-parameters, every matrix's codes, bias, multiplier, shift and
    width, the embedding, the LUTs and the logit step."""
    h = hashlib.sha256()
    h.update(json.dumps(int_model.hparams, sort_keys=True, default=str).encode())
    h.update(repr(float(int_model.logit_step)).encode())

    def add(t):
        a = np.ascontiguousarray(torch.as_tensor(t).detach().cpu().to(torch.int64).numpy())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())

    for name, q in int_model.matrices.items():
        h.update(f"{name}:{int(q.w_bits)}".encode())
        for t in (q.weight, q.bias, q.mult, q.shift):
            add(t)
    add(int_model.embedding)
    add(int_model.sigmoid_lut)
    add(int_model.tanh_lut)
    return h.hexdigest()[:16]


# -- compilation ----------------------------------------------------------------------------

def _dims(int_model) -> dict:
    hp = int_model.hparams
    return dict(F=int(hp["feature_dim"]), L=int(hp["enc_layers"]), H=int(hp["enc_hidden"]),
                E=int(hp["embed_dim"]), P=int(hp["pred_hidden"]), J=int(hp["joint_dim"]),
                V=int(hp["vocab_size"]), blank=int(int_model.blank))


def _layout(cfg: HardwareConfig, d: dict) -> dict[str, Region]:
    K = cfg.k
    nw = lambda n: _ceil_div(n, K)  # noqa: E731
    order = [("X", d["F"])] + [(f"H{l}", d["H"]) for l in range(d["L"])]
    order += [(f"C{l}", None) for l in range(d["L"])]
    order += [("GATES", None), ("ENC", d["J"]), ("EMB", None), ("E", d["E"]), ("HP", d["P"]),
              ("CP", None), ("PRED", d["J"]), ("S", d["J"]), ("LOGITS", d["V"])]
    special = {
        **{f"C{l}": (2 * nw(d["H"]), d["H"]) for l in range(d["L"])},
        "GATES": (4 * max(nw(d["H"]), nw(d["P"])), 4 * max(d["H"], d["P"])),
        "EMB": (d["V"] * nw(d["E"]), d["V"] * d["E"]),
        "CP": (2 * nw(d["P"]), d["P"]),
    }
    out, base = {}, 0
    for name, n in order:
        words, elems = special[name] if n is None else (nw(n), n)
        out[name] = Region(base, words, elems)
        base += words
    return out


def _matrix_io(d: dict, lay: dict, K: int):
    """For every matrix: its input vectors (region, elements) and output (region, out_index)."""
    L, H, P = d["L"], d["H"], d["P"]
    nH, nP = _ceil_div(H, K), _ceil_div(P, K)
    lstm_idx = lambda n, units: [b * n * K + u for b in range(4) for u in range(units)]  # noqa
    io = {}
    for l in range(L):
        ins = [("X", d["F"]), ("H0", H)] if l == 0 else [(f"H{l - 1}", H), (f"H{l}", H)]
        io[f"encoder.{l}"] = (ins, "GATES", lstm_idx(nH, H))
    io["enc_proj"] = ([(f"H{L - 1}", H)], "ENC", list(range(d["J"])))
    io["pred_lstm"] = ([("E", d["E"]), ("HP", P)], "GATES", lstm_idx(nP, P))
    io["pred_proj"] = ([("HP", P)], "PRED", list(range(d["J"])))
    io["out"] = ([("S", d["J"])], "LOGITS", list(range(d["V"])))
    return io


def _sram_weight(q, ins, lay, K) -> tuple[np.ndarray, int, int]:
    """The matrix in the activation *element* space of its (contiguous) input vectors."""
    w = q.weight.to(torch.int64).numpy()
    base = lay[ins[0][0]].base
    n_words = sum(lay[name].words for name, _ in ins)
    out = np.zeros((w.shape[0], n_words * K), dtype=np.int64)
    col = 0
    for name, n in ins:
        r = lay[name]
        off = (r.base - base) * K
        out[:, off:off + n] = w[:, col:col + n]
        col += n
    if col != w.shape[1]:
        raise CompileError(f"matrix has {w.shape[1]} columns, its inputs "
                           f"{[n for n, _ in ins]} hold {col}")
    return out, base, n_words


class _Program(list):
    """Instruction words of one program with, in :attr:`labels`, the layer each belongs to
    (the manifest's ``layers``)."""

    def __init__(self):
        super().__init__()
        self.labels: list[str] = []

    def append(self, word: int, label: str) -> None:
        super().append(word)
        self.labels.append(label)

    def end(self, cfg: HardwareConfig) -> "_Program":
        self.append(isa.end(cfg), "end")
        return self


def _check(need: int, have: int, what: str, field_name: str, hint: str = "") -> None:
    if need > have:
        raise CompileError(f"{what} needs {need}, but HardwareConfig.{field_name} is {have}; use "
                           f"a config with {field_name} >= {_next_pow2(need)}{hint}")


def compile_rnnt(cfg: HardwareConfig, int_model, *, residency: str = "auto") -> CompiledRNNT:
    """Lower an integer RNN-T onto ``cfg`` (module docstring).

    Parameters
    ----------
    cfg : HardwareConfig
        Target. Matrices with fewer weight bits than ``cfg.weight_bits`` are stored at the
        configuration's width (exact); more bits are refused.
    int_model : model.intref.IntRNNT
    residency : {"auto", "resident", "streamed"}
        Weights resident when they fit (``auto``), always (``resident``: an error if they, or
        the parameter records, do not fit) or streamed before every MATVEC (``streamed``).
        Parameter records are resident whenever they fit, except with ``resident``, which
        requires it.

    Returns
    -------
    CompiledRNNT

    Raises
    ------
    CompileError
        The model cannot be placed: the message names the memory, what it needs and the
        :class:`HardwareConfig` field to change.
    """
    if residency not in RESIDENCY:
        raise CompileError(f"residency must be one of {', '.join(RESIDENCY)}, not {residency!r}")
    if cfg.act_bits != 8:
        raise CompileError(f"the RNN-T needs act_bits = 8, not {cfg.act_bits}")
    K, B = cfg.k, cfg.dram_bytes_per_cycle
    d = _dims(int_model)
    lay = _layout(cfg, d)
    act_words = max(r.end for r in lay.values())
    _check(act_words, cfg.act_depth,
           f"the activation SRAM layout ({', '.join(f'{n} {r.words}' for n, r in lay.items())} "
           f"words of K={K})", "act_depth")

    # -- matrices: streams, checks -----------------------------------------------------------
    io = _matrix_io(d, lay, K)
    streams: dict[str, LayerStreams] = {}
    infos = {}
    acc_lim = 1 << (cfg.acc_bits - 1)
    for name, q in int_model.matrices.items():
        if int(q.w_bits) > cfg.weight_bits:
            raise CompileError(f"matrix {name!r} has {int(q.w_bits)}-bit weights but the config "
                               f"has weight_bits={cfg.weight_bits}; use a config with "
                               f"weight_bits={int(q.w_bits)}")
        bound = q.weight.abs().to(torch.int64).sum(1) * 128 + q.bias.abs().to(torch.int64)
        if int(bound.max()) >= acc_lim:
            r = int(bound.argmax())
            raise CompileError(f"matrix {name!r} row {r} can overflow the {cfg.acc_bits}-bit "
                               f"accumulator (sum |W| * 128 + |bias| = {int(bound[r])}); use a "
                               f"config with acc_bits = 32")
        ins, out_name, out_index = io[name]
        if max(out_index) >= 1 << cfg.out_index_bits:
            raise CompileError(f"matrix {name!r}: output index {max(out_index)} exceeds the "
                               f"{cfg.out_index_bits}-bit out_index of a parameter record")
        w, in_base, n_words = _sram_weight(q, ins, lay, K)
        st = layer_streams(cfg, w, q.bias, q.mult, q.shift, out_index)
        streams[name] = st
        infos[name] = (q, in_base, n_words, lay[out_name].base, out_index)

    w_need = {n: s.n_slots * s.n_words for n, s in streams.items()}
    p_need = {n: s.n_slots for n, s in streams.items()}
    w_total, p_total = sum(w_need.values()), sum(p_need.values())
    big_w = max(w_need, key=w_need.get)
    big_p = max(p_need, key=p_need.get)
    w_res = {"auto": w_total <= cfg.wsram_depth, "resident": True, "streamed": False}[residency]
    if w_res:
        _check(w_total, cfg.wsram_depth, f"weights resident (sum of every matrix's n_slots * "
               f"n_words per lane: {w_need})", "wsram_depth",
               " (or more lanes, or residency='streamed')")
    else:
        _check(w_need[big_w], cfg.wsram_depth, f"streamed weights: the largest matrix "
               f"{big_w!r} per lane ({streams[big_w].n_slots} slots x {streams[big_w].n_words} "
               f"words)", "wsram_depth", " (or more lanes)")
    p_res = p_total <= cfg.param_depth or residency == "resident"
    if p_res:
        _check(p_total, cfg.param_depth, f"parameter records resident (sum of every matrix's "
               f"n_slots per lane: {p_need})", "param_depth", " (or more lanes)")
    else:
        _check(p_need[big_p], cfg.param_depth, f"streamed parameter records: the largest matrix "
               f"{big_p!r} per lane", "param_depth", " (or more lanes)")

    # -- DRAM -----------------------------------------------------------------------------
    dram = bytearray()

    def put(blob: bytes) -> tuple[int, int]:
        addr = len(dram) // B
        pad = _ceil_div(len(blob), B) * B - len(blob)
        dram.extend(blob + bytes(pad))
        return addr, len(dram) // B - addr

    tables = [int_model.sigmoid_lut, int_model.tanh_lut]    # table numbers: isa.LUT_SIGMOID, TANH
    lut_blob = b"".join(t.to(torch.int8).numpy().tobytes() for t in tables)
    assert len(lut_blob) == isa.LUT_TABLES * isa.LUT_ENTRIES
    lut_addr, lut_words = put(lut_blob)
    nE = _ceil_div(d["E"], K)
    emb = np.zeros((d["V"], nE * K), dtype=np.int8)
    emb[:, :d["E"]] = int_model.embedding.to(torch.int8).numpy()
    emb_addr, emb_dram_words = put(emb.tobytes())

    plans: dict[str, MatrixPlan] = {}
    wbase = pbase = 0
    for name, st in streams.items():
        q, in_base, n_words, out_base, out_index = infos[name]
        wa, wn = put(st.weight_stream)
        pa, pn = put(st.param_stream)
        plans[name] = MatrixPlan(
            name=name, rows=q.rows, cols=q.cols, w_bits=int(q.w_bits), in_base=in_base,
            n_words=n_words, out_base=out_base, out_index=list(out_index), n_slots=st.n_slots,
            wsram_base=wbase if w_res else 0, param_base=pbase if p_res else 0,
            weights={"dram_addr": wa, "dram_words": wn, "bytes": st.weight_bytes},
            params={"dram_addr": pa, "dram_words": pn, "bytes": st.param_bytes},
            placement=[list(s) for s in st.placement.slots], nnz=int(q.nnz),
            lane_cost=list(st.placement.lane_cost))
        wbase += w_need[name]
        pbase += p_need[name]
    _check(len(dram) // B, cfg.dram_depth, f"DRAM (LUTs, embedding, {len(streams)} weight and "
           f"parameter streams, in {B}-byte words)", "dram_depth")

    # -- programs ---------------------------------------------------------------------------
    def ld_w(p):
        return isa.load(cfg, dram_addr=p.weights["dram_addr"], dram_len=p.weights["dram_words"],
                        count=p.n_slots * p.n_words, dest=p.wsram_base)

    def ld_p(p):
        return isa.load(cfg, dram_addr=p.params["dram_addr"], dram_len=p.params["dram_words"],
                        count=p.n_slots, dest=p.param_base, params=True)

    def mv(p, code, writers, tensor):
        if not w_res:
            code.append(ld_w(p), p.name)
        if not p_res:
            code.append(ld_p(p), p.name)
        if tensor is not None:
            writers[tensor] = len(code)
        code.append(isa.matvec(cfg, w_base=p.wsram_base, p_base=p.param_base, n_rows=p.n_slots,
                               n_words=p.n_words, in_base=p.in_base, out_base=p.out_base),
                    p.name)

    def lstm(p, code, writers, n, h, c, gates):
        """MATVEC, the three LUTs and CELL of one LSTM step; ``writers`` gets the pc writing
        ``{gates}.i`` .. ``.o`` (the LUT outputs), ``h`` and ``c``."""
        g = lay["GATES"].base
        mv(p, code, writers, None)
        writers[f"{gates}.i"] = writers[f"{gates}.f"] = len(code)
        code.append(isa.lut(cfg, dst=g, a=g, n=2 * n, table=isa.LUT_SIGMOID), p.name)
        writers[f"{gates}.g"] = len(code)
        code.append(isa.lut(cfg, dst=g + 2 * n, a=g + 2 * n, n=n, table=isa.LUT_TANH), p.name)
        writers[f"{gates}.o"] = len(code)
        code.append(isa.lut(cfg, dst=g + 3 * n, a=g + 3 * n, n=n, table=isa.LUT_SIGMOID),
                    p.name)
        writers[h] = writers[c] = len(code)
        code.append(isa.cell(cfg, dst=lay[h].base, a=g, b=lay[c].base, n=n), p.name)

    programs: dict[str, list[int]] = {}
    writers: dict[str, dict[str, int]] = {}
    nH, nP, nJ = (_ceil_div(d[x], K) for x in ("H", "P", "J"))
    try:
        code, wr = _Program(), {}
        code.append(isa.load(cfg, dram_addr=lut_addr, dram_len=lut_words, count=isa.LUT_ROWS,
                             dest=0, lut=True), "lut")
        for p in plans.values():
            if w_res:
                code.append(ld_w(p), p.name)
            if p_res:
                code.append(ld_p(p), p.name)
        programs["init"], writers["init"] = code.end(cfg), wr

        code, wr = _Program(), {}
        for l in range(d["L"]):
            lstm(plans[f"encoder.{l}"], code, wr, nH, f"H{l}", f"C{l}", f"GATES{l}")
        mv(plans["enc_proj"], code, wr, "ENC")
        programs["encoder"], writers["encoder"] = code.end(cfg), wr

        code, wr = _Program(), {}
        wr["E"] = len(code)
        code.append(isa.move(cfg, dst=lay["E"].base, a=lay["EMB"].base, n=nE, indexed=True),
                    "embedding")
        lstm(plans["pred_lstm"], code, wr, nP, "HP", "CP", "GATES")
        mv(plans["pred_proj"], code, wr, "PRED")
        programs["predict"], writers["predict"] = code.end(cfg), wr

        code, wr = _Program(), {}
        s = lay["S"].base
        wr["S.sum"] = len(code)
        code.append(isa.vadd(cfg, dst=s, a=lay["ENC"].base, b=lay["PRED"].base, n=nJ), "joint")
        wr["S"] = len(code)
        code.append(isa.lut(cfg, dst=s, a=s, n=nJ, table=isa.LUT_TANH), "joint")
        mv(plans["out"], code, wr, "LOGITS")
        programs["joint"], writers["joint"] = code.end(cfg), wr
    except isa.ISAError as e:
        raise CompileError(f"an instruction field does not fit the configuration: {e}") from None

    words: list[int] = []
    entries = {}
    for name in ("init", "encoder", "predict", "joint"):
        entries[name] = {"pc": len(words), "length": len(programs[name])}
        writers[name] = {t: pc + len(words) for t, pc in writers[name].items()}
        words += programs[name]
    _check(len(words), cfg.imem_depth, f"instruction memory (programs init "
           f"{len(programs['init'])}, encoder {len(programs['encoder'])}, predict "
           f"{len(programs['predict'])}, joint {len(programs['joint'])} instructions)",
           "imem_depth")

    # -- image ------------------------------------------------------------------------------
    mh = model_hash(int_model)
    residency_out = {"weights": "resident" if w_res else "streamed",
                     "params": "resident" if p_res else "streamed"}
    dense_bytes = sum(_ceil_div(q.rows * q.cols * int(q.w_bits), 8)
                      for q in int_model.matrices.values())
    w_stream_bytes = sum(st.weight_bytes for st in streams.values())
    stats = {
        "act_words": act_words,
        "wsram_words_per_lane": w_total if w_res else w_need[big_w],
        "wsram_words_needed_resident": w_total,
        "param_records_per_lane": p_total if p_res else p_need[big_p],
        "dram_words": len(dram) // B,
        "instructions": len(words),
        "program_lengths": {n: len(c) for n, c in programs.items()},
        "nnz": {n: int(q.nnz) for n, q in int_model.matrices.items()},
        "weight_stream_bytes": w_stream_bytes,
        "dense_bytes": dense_bytes,
        "compression_ratio": dense_bytes / w_stream_bytes if w_stream_bytes else 0.0,
        "balance": {n: st.placement.balance for n, st in streams.items()},
        "streamed_weight_bytes": {
            prog: sum(plans[m].weights["dram_words"] * B for m in mats) if not w_res else 0
            for prog, mats in (("encoder", [f"encoder.{l}" for l in range(d["L"])]
                                + ["enc_proj"]),
                               ("predict", ["pred_lstm", "pred_proj"]), ("joint", ["out"]))},
    }
    manifest = {
        "programs": entries,
        "rnnt": {
            "format": RNNT_FORMAT, "model_hash": mh, "config_digest": cfg.digest,
            "memfmt_version": FORMAT_VERSION, "dims": d,
            "layout": {n: [r.base, r.words, r.elems] for n, r in lay.items()},
            "residency": residency_out,
            "matrices": {n: p.to_dict() for n, p in plans.items()},
            "lut": {"dram_addr": lut_addr, "dram_words": lut_words,
                    "tables": {"sigmoid": isa.LUT_SIGMOID, "tanh": isa.LUT_TANH}},
            "embedding": {"dram_addr": emb_addr, "dram_words": emb_dram_words,
                          "act_base": lay["EMB"].base, "words": lay["EMB"].words},
            "writers": writers,
            "layers": {n: list(c.labels) for n, c in programs.items()},
            "logit_step": float(int_model.logit_step),
        },
        "stats": stats,
    }
    image = MemoryImage(cfg, bytes(dram), isa.program_bytes(cfg, words), manifest)
    return CompiledRNNT.from_image(image)


def fit_config(cfg: HardwareConfig, int_model, *, residency: str = "resident"
               ) -> HardwareConfig:
    """``cfg`` with its memory depths (``act_depth``, ``wsram_depth``, ``param_depth``,
    ``imem_depth``, ``dram_depth``) raised to the smallest powers of two that hold
    ``int_model`` (never lowered), and ``weight_bits`` raised to the model's widest matrix:
    what :func:`compile_rnnt` needs with ``residency``. The lane count, ``K``, ``M`` and the
    DRAM width are kept."""
    wb = max([cfg.weight_bits] + [int(q.w_bits) for q in int_model.matrices.values()])
    big = cfg.replace(weight_bits=wb, act_depth=1 << 16, wsram_depth=1 << 20,
                      param_depth=1 << 20, imem_depth=1 << 16, dram_depth=1 << 26)
    c = compile_rnnt(big, int_model, residency=residency)
    st = c.stats
    p_need = st["param_records_per_lane"]
    out = cfg.replace(
        weight_bits=wb,
        act_depth=max(cfg.act_depth, _next_pow2(st["act_words"])),
        wsram_depth=max(cfg.wsram_depth, _next_pow2(st["wsram_words_per_lane"])),
        param_depth=max(cfg.param_depth, _next_pow2(p_need)),
        imem_depth=max(cfg.imem_depth, _next_pow2(st["instructions"])),
        dram_depth=max(cfg.dram_depth, _next_pow2(st["dram_words"])),
    )
    compile_rnnt(out, int_model, residency=residency)      # the field widths changed: recheck
    return out
