"""Compile one sparse quantized fully-connected layer (a matrix-vector product) to a memory image.

Dimension letters
-----------------
``R``  layer rows (outputs), ``C`` layer columns (inputs)
``L``  lanes, ``K`` weights per word, ``M`` multipliers per lane, ``B`` DRAM bytes per cycle
       (all from :class:`rtl.config.HardwareConfig`)
``S``  row slots per lane, ``n_slots = ceil(R / L)``
``W``  weight words per row, ``n_words = ceil(C / K)``

Memory layout produced by :func:`compile_matvec`
------------------------------------------------
* Weight SRAM of every lane: slot ``i``, word ``j`` at address ``i*n_words + j`` (base 0).
* Parameter memory of every lane: slot ``i`` at address ``i`` (base 0).
* Activation SRAM: the input vector in words ``in_base .. in_base + n_words - 1`` (element ``c``
  in word ``in_base + c // K``, lane ``c % K``; padding elements must be zero, see
  :func:`pack_input`), the output vector from word ``out_base``: row ``r`` is written to element
  ``out_base*K + r``. Output elements past ``R`` in the last output word are left untouched.
* DRAM, from word ``dram_base``: the compressed weight stream (padded to a whole DRAM word), then
  the parameter stream (padded likewise). DRAM words before ``dram_base`` are zero in the image.
* Instruction memory: programs ``load`` (weights and parameters into the SRAMs), ``matvec`` and
  ``matvec_dense`` (zero skipping disabled), each ending in ``END``; entry points in
  ``image.manifest["programs"]``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import torch

from model.quant import QuantLinear
from rtl import isa
from rtl.config import HardwareConfig
from rtl.mac_lane import issue_cycles
from rtl.memfmt import MemoryImage, ParamRecord

from .compress import compress_words

__all__ = ["CompileError", "Placement", "CompiledMatvec", "LayerStreams", "assign_rows",
           "compile_matvec", "expected_counts", "layer_streams", "pack_input", "row_costs",
           "unpack_output"]


class CompileError(ValueError):
    """A layer that cannot be compiled for a configuration. The message names the limit and the
    :class:`~rtl.config.HardwareConfig` field to change."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _weight_matrix(w) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().numpy()
    a = np.asarray(w)
    if a.dtype.kind not in "iu" or a.ndim != 2:
        raise ValueError(f"expected an integer [R, C] weight matrix, not {a.dtype} of shape "
                         f"{list(a.shape)}")
    return a.astype(np.int64)


def _padded_words(cfg: HardwareConfig, w: np.ndarray) -> np.ndarray:
    """``[R, C]`` -> ``[R, n_words, K]`` with zero columns appended."""
    R, C = w.shape
    n_words = _ceil_div(C, cfg.k)
    out = np.zeros((R, n_words * cfg.k), dtype=np.int64)
    out[:, :C] = w
    return out.reshape(R, n_words, cfg.k)


# -- row placement ---------------------------------------------------------------------------

@dataclass
class Placement:
    """Which layer row each lane's row slot computes.

    Attributes
    ----------
    slots : list of list of int, ``[L][S]``
        ``slots[l][i]`` is the row in lane ``l``'s slot ``i``, or ``-1`` for a padding slot.
    lane_cost : list of int, ``[L]``
        Estimated issue cycles of each lane (see :func:`assign_rows`), padding slots included.
    lane_nnz : list of int, ``[L]``
        Nonzero weights each lane holds.
    """

    slots: list[list[int]]
    lane_cost: list[int]
    lane_nnz: list[int]

    @property
    def lanes(self) -> int:
        return len(self.slots)

    @property
    def n_slots(self) -> int:
        return len(self.slots[0]) if self.slots else 0

    @property
    def table(self) -> np.ndarray:
        """``int64 [L, S]`` array of rows (``-1`` for padding)."""
        return np.array(self.slots, dtype=np.int64).reshape(self.lanes, self.n_slots)

    @property
    def balance(self) -> float:
        """``max(lane_cost) / mean(lane_cost)``: 1.0 is perfect balance."""
        mean = sum(self.lane_cost) / len(self.lane_cost)
        return max(self.lane_cost) / mean if mean else 1.0

    def location(self, row: int) -> tuple[int, int]:
        """``(lane, slot)`` of a layer row."""
        for lane, rows in enumerate(self.slots):
            if row in rows:
                return lane, rows.index(row)
        raise KeyError(f"row {row} is not placed")


def row_costs(cfg: HardwareConfig, weight) -> np.ndarray:
    """Estimated issue cycles of each row: :func:`rtl.mac_lane.issue_cycles` of its words'
    nonzero weight counts (activation zeros are unknown at compile time).

    Parameters
    ----------
    weight : array_like of int, shape ``[R, C]``

    Returns
    -------
    numpy.ndarray
        ``int64 [R]``.
    """
    words = _padded_words(cfg, _weight_matrix(weight))
    nnz = np.count_nonzero(words, axis=2)                        # [R, n_words]
    return np.asarray(issue_cycles(nnz.T, cfg.m), dtype=np.int64).reshape(nnz.shape[0])


def assign_rows(cfg: HardwareConfig, layer_weight_int) -> Placement:
    """Balance a layer's rows over the ``L`` lanes.

    Every lane gets exactly ``S = ceil(R / L)`` row slots (the ISA runs the same number of slots
    on every lane); the ``L*S - R`` spare slots are padding (all-zero weights, ``write = 0``).

    Cost model: a lane consumes at most one weight word per cycle and issues at most ``M``
    nonzero (weight, activation) pairs per cycle, taken from the held rest of one word and
    the next word of the same row, so a row costs :func:`rtl.mac_lane.issue_cycles` of its
    words' nonzero counts (between ``max(n_words, ceil(nnz / M))`` and
    ``sum over its words of max(1, ceil(nnz(word) / M))``). Activation zeros are unknown at
    compile time and ignored. A padding slot still walks its ``n_words`` all-zero words, so it
    costs ``n_words`` (the minimum any row can cost).

    Algorithm: greedy LPT (longest processing time first) under the slot constraint. Items (rows
    and padding slots) are sorted by cost, descending (ties: real rows before padding, then by
    row index); each goes to the lane with the least total cost that still has a free slot
    (ties: lowest lane). For many rows per lane the imbalance is bounded by about one row's cost.
    Within a lane the rows are then sorted by row index (padding last), so a lane writes its
    outputs in increasing order; the order does not change the lane's cost.

    Parameters
    ----------
    cfg : HardwareConfig
    layer_weight_int : array_like of int, shape ``[R, C]``
        The integer weight matrix (only its zero pattern matters).

    Returns
    -------
    Placement
    """
    w = _weight_matrix(layer_weight_int)
    R = w.shape[0]
    L = cfg.lanes
    S = _ceil_div(R, L)
    n_words = _ceil_div(w.shape[1], cfg.k)
    cost = row_costs(cfg, w)
    nnz = np.count_nonzero(w, axis=1)
    n_pad = L * S - R
    # items: (-cost, is_padding, row); padding items carry row -1
    order = np.lexsort((np.arange(R), -cost))                     # cost desc, then row asc
    items = [(int(cost[r]), int(r)) for r in order] + [(n_words, -1)] * n_pad
    items.sort(key=lambda it: -it[0])                              # stable: rows before padding
    heap = [(0, lane) for lane in range(L)]
    free = [S] * L
    load = [0] * L
    lanes: list[list[int]] = [[] for _ in range(L)]
    for c, r in items:
        total, lane = heapq.heappop(heap)
        lanes[lane].append(r)
        load[lane] = total + c
        free[lane] -= 1
        if free[lane]:
            heapq.heappush(heap, (load[lane], lane))
    slots = [sorted(x for x in rows if x >= 0) + [-1] * rows.count(-1) for rows in lanes]
    lane_nnz = [int(sum(nnz[r] for r in rows if r >= 0)) for rows in slots]
    return Placement(slots=slots, lane_cost=[int(x) for x in load], lane_nnz=lane_nnz)


# -- activation packing ----------------------------------------------------------------------

def pack_input(cfg: HardwareConfig, x) -> list[int]:
    """An int8 vector as activation-SRAM word integers.

    Element ``k`` of a word sits at bits ``[8k, 8k+8)`` in two's complement; the vector is
    zero-padded to ``ceil(C / K)`` words (the padding must be zero: it meets zero weights, but
    the zero-skipping statistics count it).

    Parameters
    ----------
    x : array_like of int, shape ``[C]``
        Signed ``act_bits`` values.

    Returns
    -------
    list of int
        ``ceil(C / K)`` words, each in ``[0, 2**(K*act_bits))``.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "iu" or a.ndim != 1:
        raise ValueError(f"x must be a 1-D integer vector, not {a.dtype} of shape {list(a.shape)}")
    a = a.astype(np.int64)
    ab = cfg.act_bits
    lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    bad = (a < lo) | (a > hi)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"x[{i}] = {int(a[i])} does not fit signed act_bits={ab} [{lo}, {hi}]")
    if ab != 8:
        raise ValueError(f"pack_input supports act_bits=8, not {ab}")
    n_words = _ceil_div(len(a), cfg.k)
    buf = np.zeros(n_words * cfg.k, dtype=np.uint8)
    buf[:len(a)] = (a & 0xFF).astype(np.uint8)
    raw = buf.tobytes()
    return [int.from_bytes(raw[i * cfg.k:(i + 1) * cfg.k], "little") for i in range(n_words)]


def unpack_output(cfg: HardwareConfig, words, n: int) -> np.ndarray:
    """Inverse of :func:`pack_input`: the first ``n`` elements of activation words.

    Parameters
    ----------
    words : sequence of int
        Activation-SRAM words, each in ``[0, 2**(K*act_bits))``.
    n : int
        Elements to return, at most ``len(words) * K``.

    Returns
    -------
    numpy.ndarray
        ``int64 [n]``, sign-extended.
    """
    if cfg.act_bits != 8:
        raise ValueError(f"unpack_output supports act_bits=8, not {cfg.act_bits}")
    words = [int(w) for w in words]
    if n > len(words) * cfg.k:
        raise ValueError(f"{len(words)} words hold {len(words) * cfg.k} elements, not {n}")
    nbytes = cfg.k
    raw = b"".join(w.to_bytes(nbytes, "little") for w in words)
    return np.frombuffer(raw, dtype=np.int8)[:n].astype(np.int64)



# -- the two DRAM streams of a matrix ----------------------------------------------------------

@dataclass
class LayerStreams:
    """A matrix lowered to its two DRAM streams (:mod:`rtl.memfmt`).

    Attributes
    ----------
    placement : Placement
        Rows over lanes (:func:`assign_rows`).
    n_slots, n_words : int
        Row slots per lane, weight words per row.
    weight_stream, param_stream : bytes
        The compressed weight words (lane 0 first, slot by slot, word 0 first) and the
        parameter records (lane 0 first), each zero-padded to whole DRAM words.
    weight_bytes, param_bytes : int
        Their lengths before the padding.
    weight_dram_words, param_dram_words : int
        Their lengths in DRAM words.
    """

    placement: Placement
    n_slots: int
    n_words: int
    weight_stream: bytes
    param_stream: bytes
    weight_bytes: int
    param_bytes: int
    weight_dram_words: int
    param_dram_words: int


def layer_streams(cfg: HardwareConfig, weight, bias, mult, shift, out_index=None) -> LayerStreams:
    """Balance a matrix's rows over the lanes and build its weight and parameter streams.

    Parameters
    ----------
    cfg : HardwareConfig
    weight : array_like of int, shape ``[R, C]``
        Weight codes (``C`` counts activation *elements*: zero columns where the input has
        padding).
    bias, mult, shift : array_like of int, shape ``[R]``
        The parameter record fields of each row.
    out_index : array_like of int, shape ``[R]``, optional
        The output element of each row, relative to ``out_base*K`` (default: row ``r`` writes
        element ``r``).

    Returns
    -------
    LayerStreams
    """
    w = _weight_matrix(weight)
    R = w.shape[0]
    L, K, B = cfg.lanes, cfg.k, cfg.dram_bytes_per_cycle
    n_words = _ceil_div(w.shape[1], K)
    n_slots = _ceil_div(R, L)
    bias, mult, shift = (np.asarray(v.numpy() if isinstance(v, torch.Tensor) else v)
                         .astype(np.int64) for v in (bias, mult, shift))
    if out_index is None:
        out_index = np.arange(R, dtype=np.int64)
    out_index = np.asarray(out_index, dtype=np.int64)
    placement = assign_rows(cfg, w)
    words = _padded_words(cfg, w)                                    # [R, n_words, K]
    words = np.concatenate([words, np.zeros((1, n_words, K), dtype=np.int64)])  # row R: padding
    table = placement.table.copy()
    table[table < 0] = R
    stream_words = words[table.reshape(-1)].reshape(-1, K)           # [L*S*n_words, K]
    wstream = compress_words(cfg, stream_words)
    w_bytes = len(wstream)
    w_dram = _ceil_div(w_bytes, B)
    wstream += bytes(w_dram * B - w_bytes)
    recs = []
    for lane_rows in placement.slots:
        for r in lane_rows:
            if r < 0:
                recs.append(ParamRecord(0, 0, 0, False, 0))
            else:
                recs.append(ParamRecord(int(bias[r]), int(mult[r]), int(shift[r]), True,
                                        int(out_index[r])))
    pstream = b"".join(rec.pack() for rec in recs)
    p_bytes = len(pstream)
    p_dram = _ceil_div(p_bytes, B)
    pstream += bytes(p_dram * B - p_bytes)
    return LayerStreams(placement=placement, n_slots=n_slots, n_words=n_words,
                        weight_stream=wstream, param_stream=pstream, weight_bytes=w_bytes,
                        param_bytes=p_bytes, weight_dram_words=w_dram, param_dram_words=p_dram)


# -- compilation -----------------------------------------------------------------------------

@dataclass
class CompiledMatvec:
    """A compiled layer: the memory image and where things are.

    Attributes
    ----------
    image : rtl.memfmt.MemoryImage
        DRAM contents, programs ``load``, ``matvec``, ``matvec_dense``, manifest.
    in_base, out_base : int
        First activation-SRAM word of the input and the output vector.
    n_words : int
        ``ceil(C / K)``, weight (and input) words per row.
    n_slots : int
        ``ceil(R / L)``, row slots per lane.
    rows, cols : int
        ``R`` and ``C``.
    placement : Placement
    stats : dict
        ``nnz``; ``weight_stream_bytes`` (sum of the compressed words, padding slots included,
        before padding to a DRAM word) and its alias ``compressed_bytes``;
        ``param_stream_bytes``; ``dense_bytes`` (``ceil(R*C*w_bits/8)``);
        ``weight_dram_words`` / ``param_dram_words`` (padded stream lengths);
        ``ideal_load_cycles`` (``weight_stream_bytes / B``); ``compression_ratio``
        (``dense_bytes / compressed_bytes``); ``lane_cost`` / ``lane_nnz`` (per lane);
        ``balance`` (max / mean lane cost); ``padding_slots``.
    """

    image: MemoryImage
    in_base: int
    out_base: int
    n_words: int
    n_slots: int
    rows: int
    cols: int
    placement: Placement
    stats: dict = field(default_factory=dict)

    @property
    def out_words(self) -> int:
        """Activation words the output spans, ``ceil(R / K)``."""
        return _ceil_div(self.rows, self.image.config.k)

    def pack_input(self, x) -> list[int]:
        """:func:`pack_input` for this layer (checks ``len(x) == C``)."""
        if len(x) != self.cols:
            raise ValueError(f"the layer takes C={self.cols} inputs, not {len(x)}")
        return pack_input(self.image.config, x)

    def unpack_output(self, words) -> np.ndarray:
        """:func:`unpack_output` of the ``out_words`` output words, ``int64 [R]``."""
        return unpack_output(self.image.config, words, self.rows)


def _check_fits(cfg: HardwareConfig, what: str, need: int, have: int, field_name: str,
                hint: str = "") -> None:
    if need > have:
        raise CompileError(f"{what} needs {need}, but HardwareConfig.{field_name} is {have}; use a "
                           f"config with {field_name} >= {_next_pow2(need)}{hint}")


def compile_matvec(cfg: HardwareConfig, layer: QuantLinear, *, in_base: int = 0,
                   out_base: int | None = None, dram_base: int = 0,
                   name: str = "fc") -> CompiledMatvec:
    """Compile ``y = requant(W @ x + bias)`` for one layer into a memory image.

    Parameters
    ----------
    cfg : HardwareConfig
        Target; ``cfg.weight_bits`` must equal ``layer.w_bits``.
    layer : model.quant.QuantLinear
        ``R x C`` layer.
    in_base : int
        Activation-SRAM word of the input vector (``n_words`` words).
    out_base : int, optional
        Activation-SRAM word of the output vector (``ceil(R / K)`` words); default: the word
        right after the input, ``in_base + n_words``. Must not overlap the input.
    dram_base : int
        DRAM word where the weight stream starts.
    name : str
        Layer name in the manifest.

    Returns
    -------
    CompiledMatvec

    Raises
    ------
    CompileError
        The layer does not fit the configuration (the message names the limit and the field),
        or its weight width differs from the configuration's.
    """
    if layer.w_bits != cfg.weight_bits:
        raise CompileError(f"layer {name!r} has {layer.w_bits}-bit weights but the config has "
                           f"weight_bits={cfg.weight_bits}; use a config with "
                           f"weight_bits={layer.w_bits} (or requantize the layer)")
    L, K, B = cfg.lanes, cfg.k, cfg.dram_bytes_per_cycle
    R, C = layer.rows, layer.cols
    n_words = _ceil_div(C, K)
    n_slots = _ceil_div(R, L)
    out_words = _ceil_div(R, K)
    if out_base is None:
        out_base = in_base + n_words
    for arg, v in (("in_base", in_base), ("out_base", out_base), ("dram_base", dram_base)):
        if v < 0:
            raise CompileError(f"{arg} must be >= 0, not {v}")
    dims = f"layer {name!r} ({R}x{C})"

    # -- limits -------------------------------------------------------------------------
    if R > 1 << cfg.out_index_bits:
        raise CompileError(f"{dims}: {R} rows exceed the {cfg.out_index_bits}-bit out_index of a "
                           f"parameter record (at most {1 << cfg.out_index_bits} rows); split "
                           f"the layer")
    _check_fits(cfg, f"{dims}: weight SRAM per lane (n_slots*n_words = {n_slots}*{n_words} words)",
                n_slots * n_words, cfg.wsram_depth, "wsram_depth", " (or more lanes)")
    _check_fits(cfg, f"{dims}: parameter memory per lane (n_slots = {n_slots} records)",
                n_slots, cfg.param_depth, "param_depth", " (or more lanes)")
    _check_fits(cfg, f"{dims}: activation SRAM for the input (words {in_base}..{in_base + n_words - 1})",
                in_base + n_words, cfg.act_depth, "act_depth", " (or a lower in_base)")
    _check_fits(cfg, f"{dims}: activation SRAM for the output (words {out_base}.."
                f"{out_base + out_words - 1})", out_base + out_words, cfg.act_depth, "act_depth",
                " (or a lower out_base)")
    if in_base < out_base + out_words and out_base < in_base + n_words:
        raise CompileError(f"{dims}: output words {out_base}..{out_base + out_words - 1} overlap "
                           f"input words {in_base}..{in_base + n_words - 1} (the input is read "
                           f"while outputs are written); choose another out_base")

    # -- weight and parameter streams ---------------------------------------------------
    streams = layer_streams(cfg, layer.weight, layer.bias, layer.mult, layer.shift)
    placement = streams.placement
    wstream, pstream = streams.weight_stream, streams.param_stream
    w_bytes, w_dram = streams.weight_bytes, streams.weight_dram_words
    p_bytes, p_dram = streams.param_bytes, streams.param_dram_words

    w_addr = dram_base
    p_addr = dram_base + w_dram
    _check_fits(cfg, f"{dims}: DRAM (dram_base {dram_base} + {w_dram} weight words + {p_dram} "
                f"parameter words)", p_addr + p_dram, cfg.dram_depth, "dram_depth",
                " (or a lower dram_base)")

    # -- programs -----------------------------------------------------------------------
    try:
        load_w = isa.load(cfg, dram_addr=w_addr, dram_len=w_dram, count=n_slots * n_words,
                          dest=0)
        load_p = isa.load(cfg, dram_addr=p_addr, dram_len=p_dram, count=n_slots, dest=0,
                          params=True)
        programs = {
            "load": [load_w, load_p, isa.end(cfg)],
            # The same two loads one at a time, so that a host can time the weight stream alone.
            "load_weights": [load_w, isa.end(cfg)],
            "load_params": [load_p, isa.end(cfg)],
            "matvec": [
                isa.matvec(cfg, w_base=0, p_base=0, n_rows=n_slots, n_words=n_words,
                           in_base=in_base, out_base=out_base),
                isa.end(cfg),
            ],
            "matvec_dense": [
                isa.matvec(cfg, w_base=0, p_base=0, n_rows=n_slots, n_words=n_words,
                           in_base=in_base, out_base=out_base, dense=True),
                isa.end(cfg),
            ],
        }
    except isa.ISAError as e:
        raise CompileError(f"{dims}: an instruction field does not fit: {e}") from None
    code: list[int] = []
    entries = {}
    for prog, instrs in programs.items():
        entries[prog] = {"pc": len(code), "length": len(instrs)}
        code += instrs
    _check_fits(cfg, f"{dims}: instruction memory ({len(code)} instructions)", len(code),
                cfg.imem_depth, "imem_depth")

    # -- image --------------------------------------------------------------------------
    nnz = layer.nnz
    dense_bytes = _ceil_div(R * C * layer.w_bits, 8)
    stats = {
        "nnz": nnz,
        "sparsity": layer.sparsity,
        "weight_stream_bytes": w_bytes,
        "compressed_bytes": w_bytes,
        "param_stream_bytes": p_bytes,
        "dense_bytes": dense_bytes,
        "compression_ratio": dense_bytes / w_bytes,
        "weight_dram_words": w_dram,
        "param_dram_words": p_dram,
        "ideal_load_cycles": w_bytes / B,
        "lane_cost": list(placement.lane_cost),
        "lane_nnz": list(placement.lane_nnz),
        "balance": placement.balance,
        "padding_slots": L * n_slots - R,
    }
    manifest = {
        "programs": entries,
        "layers": [{
            "name": name, "rows": R, "cols": C, "w_bits": layer.w_bits,
            "n_slots": n_slots, "n_words": n_words, "in_base": in_base, "out_base": out_base,
            "out_words": out_words,
            "placement": [list(s) for s in placement.slots],
            "weights": {"dram_addr": w_addr, "dram_words": w_dram, "bytes": w_bytes,
                        "wsram_base": 0},
            "params": {"dram_addr": p_addr, "dram_words": p_dram, "bytes": p_bytes,
                       "param_base": 0},
        }],
        "stats": stats,
    }
    dram = bytes(dram_base * B) + wstream + pstream
    image = MemoryImage(cfg, dram, isa.program_bytes(cfg, code), manifest)
    return CompiledMatvec(image=image, in_base=in_base, out_base=out_base, n_words=n_words,
                          n_slots=n_slots, rows=R, cols=C, placement=placement, stats=stats)


def expected_counts(cfg: HardwareConfig, layer: QuantLinear, x) -> dict:
    """Zero-skipping statistics a MATVEC of ``layer`` on ``x`` must report.

    Counted over the padded ``(L*S) x (n_words*K)`` matrix every lane walks (padding rows and
    columns are zero weights). Every (weight, activation) pair falls in exactly one class:

    * ``nonzero_products``: ``w != 0`` and ``x != 0`` (issued to a multiplier);
    * ``zero_weight``: ``w == 0`` (skipped, whatever ``x`` is);
    * ``zero_activation``: ``w != 0`` and ``x == 0`` (skipped).

    Parameters
    ----------
    cfg : HardwareConfig
    layer : QuantLinear
    x : array_like of int, shape ``[C]``

    Returns
    -------
    dict
        The three counts, ``total_pairs`` (their sum), ``ideal_cycles =
        nonzero_products / (L*M)`` (float) and ``lane_products`` (nonzero products per lane
        under :func:`assign_rows`'s placement, ``[L]``).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    xa = np.asarray(x).astype(np.int64)
    if xa.shape != (layer.cols,):
        raise ValueError(f"x must have shape [C] = [{layer.cols}], not {list(xa.shape)}")
    w = layer.weight.numpy()
    R = layer.rows
    n_words = _ceil_div(layer.cols, cfg.k)
    n_slots = _ceil_div(R, cfg.lanes)
    total = cfg.lanes * n_slots * n_words * cfg.k
    wnz = w != 0
    row_products = wnz.astype(np.int64) @ (xa != 0).astype(np.int64)    # [R]
    nonzero = int(row_products.sum())
    nnz = int(wnz.sum())
    placement = assign_rows(cfg, w)
    lane_products = [int(sum(row_products[r] for r in rows if r >= 0))
                     for rows in placement.slots]
    return {
        "nonzero_products": nonzero,
        "zero_weight": total - nnz,
        "zero_activation": nnz - nonzero,
        "total_pairs": total,
        "ideal_cycles": nonzero / cfg.macs_per_cycle,
        "lane_products": lane_products,
    }
