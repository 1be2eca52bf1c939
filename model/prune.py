"""Gradual magnitude pruning, post-training pruning, sparsity and footprint reports.

Which weights are pruned
------------------------
Every matrix of :meth:`model.rnnt.RNNT.matrices`: the encoder LSTM layers, the prediction LSTM,
the two joint projections and the output layer (each with its own target). The embedding table
is not pruned: it is a 29-row lookup (1,856 weights in the default preset), not a matrix-vector
product, so zeros in it would save nothing on the accelerator. Biases are not pruned.

Weights are ranked by magnitude *in the integer input domain*, ``|W_eff[r, c] * col_step[c]|``
(see :mod:`model.rnnt`): the size of a weight's contribution per input code, which is what the
accelerator's zero skipping saves. For every matrix but the first encoder layer all columns have
the same step and this is plain ``|W|``. The ranking and the tie-break are
:func:`model.quant.prune_magnitude`'s, over the whole matrix.

Gradual pruning (Zhu and Gupta, "To prune, or not to prune", 2017)
-----------------------------------------------------------------
The target sparsity of a matrix rises from ``s_i`` to ``s_f`` along the cubic schedule::

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n dt))**3,    t0 <= t <= t0 + n dt

with the masks recomputed every ``dt`` optimizer steps (at ``t = t0, t0 + dt, ...``, and at
``t0 + n dt`` itself) and applied (``W *= mask``) after *every* optimizer step, so pruned
weights stay exactly zero whatever the optimizer does. The schedule prunes fast while many
redundant weights remain and slowly as the target nears, leaving the network time to recover.
Pruned weights are zero, hence the smallest, so later masks contain earlier ones.

Footprint
---------
:func:`footprint` counts the bytes of a model in the accelerator's compressed format
(``rtl/memfmt.py``): each row split into words of ``K = 64`` weights, each word a ``K``-bit
nonzero bitmap plus its nonzero ``w_bits`` codes packed and padded to a byte, and per row an
int32 bias, a 32-bit multiplier and an 8-bit shift (9 bytes; the memory image pads the record
to 16). The embedding is an int8 table. The bitmap alone costs 1 bit per weight, so 4-bit
weights at sparsity ``s`` cost at least ``1 + 4 (1 - s)`` bits per weight.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .quant import prune_magnitude, quantize_weight

__all__ = ["cubic_sparsity", "GradualPruner", "prune_post_training", "magnitude", "masks_of",
           "sparsity_report", "footprint"]


def cubic_sparsity(step: int, *, final: float, start: int, end: int, initial: float = 0.0,
                   every: int = 1) -> float:
    """Target sparsity at optimizer step ``step`` (Zhu and Gupta's cubic schedule).

    Parameters
    ----------
    step : int
        Optimizer steps taken so far.
    final, initial : float
        ``s_f`` and ``s_i`` in ``[0, 1]``.
    start, end : int
        ``t0`` and ``t0 + n dt``; ``end >= start``.
    every : int
        ``dt``: the sparsity only changes at ``start + k * every`` (and at ``end``).

    Returns
    -------
    float
        ``initial`` before ``start``, ``final`` from ``end`` on.
    """
    for name, v in (("final", final), ("initial", initial)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"cubic_sparsity: {name} must be in [0, 1], not {v}")
    if end < start or every < 1:
        raise ValueError(f"cubic_sparsity: need end >= start and every >= 1, not start={start}, "
                         f"end={end}, every={every}")
    if step < start:
        return float(initial)
    if step >= end:
        return float(final)
    t = start + ((step - start) // every) * every
    return float(final + (initial - final) * (1.0 - (t - start) / (end - start)) ** 3)


def magnitude(layer: nn.Module) -> torch.Tensor:
    """``|W_eff * col_step|`` of a model matrix (float64, detached): the pruning criterion."""
    w, _ = layer.effective_weight()
    return (w.detach().to(torch.float64) * layer.col_step.to(torch.float64)).abs()


def _targets(model, sparsity) -> dict[str, float]:
    mats = model.matrices()
    if isinstance(sparsity, dict):
        unknown = set(sparsity) - set(mats)
        if unknown:
            raise ValueError(f"no matrix {sorted(unknown)[0]!r} to prune; the matrices are "
                             f"{', '.join(mats)}")
        targets = {k: float(v) for k, v in sparsity.items()}
    else:
        targets = {k: float(sparsity) for k in mats}
    for k, v in targets.items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"sparsity of {k!r} must be in [0, 1], not {v}")
    return targets


class GradualPruner:
    """Gradual magnitude pruning of a model's matrices (module docstring).

    Parameters
    ----------
    model : model.rnnt.RNNT
    sparsity : float or dict
        Final sparsity of every matrix, or per matrix name (matrices not named are not pruned).
    start, end : int
        Optimizer steps where pruning starts and reaches the final sparsity.
    every : int
        Steps between mask updates (``dt``).
    initial : float
        ``s_i`` (default 0; with ``masks``, each matrix's sparsity in them).
    masks : dict, optional
        Masks to start from (a pruned checkpoint's, when fine-tuning it further): pruning
        resumes from them, so each matrix's schedule starts at its current sparsity and
        weights pruned before stay pruned. A matrix already sparser than its target is an
        error (masks only shrink).

    Call :meth:`step` after every optimizer step.
    """

    def __init__(self, model: nn.Module, *, sparsity, start: int, end: int, every: int = 1,
                 initial: float | None = None, masks: dict | None = None):
        self.model = model
        self.targets = _targets(model, sparsity)
        self.start, self.end, self.every = int(start), int(end), int(every)
        cubic_sparsity(start, final=0.0, start=self.start, end=self.end, every=self.every)
        mats = model.matrices()
        self.masks = {k: torch.ones(mats[k].weight.shape, dtype=torch.bool) for k in self.targets}
        self.current = {k: 0.0 for k in self.targets}
        for k, m in (masks or {}).items():
            if k not in self.targets:
                continue
            if tuple(m.shape) != tuple(self.masks[k].shape):
                raise ValueError(f"initial mask {k!r} has shape {tuple(m.shape)}, the matrix "
                                 f"{tuple(self.masks[k].shape)}")
            self.masks[k] = m.detach().clone().to(torch.bool)
            n = self.masks[k].numel()
            pruned = n - int(self.masks[k].sum())
            s = pruned / n
            if pruned > math.floor(self.targets[k] * n + 0.5):   # more than the target's count
                raise ValueError(f"{k!r} is already {100 * s:.1f} % sparse, more than the target "
                                 f"{100 * self.targets[k]:.1f} % (pruning masks only shrink): "
                                 f"ask for a sparsity of at least {s:.3f}")
            self.current[k] = s
        if initial is None:
            self.initial = {k: self.current[k] for k in self.targets}
        else:
            self.initial = {k: float(initial) for k in self.targets}

    def sparsity_at(self, step: int) -> dict[str, float]:
        """Scheduled sparsity per matrix at ``step``."""
        return {k: cubic_sparsity(step, final=v, start=self.start, end=self.end,
                                  initial=self.initial[k], every=self.every)
                for k, v in self.targets.items()}

    @torch.no_grad()
    def update(self, step: int) -> bool:
        """Recompute the masks if the schedule's sparsity changed; True if it did."""
        changed = False
        mats = self.model.matrices()
        for k, s in self.sparsity_at(step).items():
            if s != self.current[k]:
                # rank the masked matrix: the optimizer may have moved pruned weights off zero
                # since the last apply(), but they stay pruned (masks only shrink)
                mag = magnitude(mats[k]) * self.masks[k]
                self.masks[k] = prune_magnitude(mag, s) & self.masks[k]
                self.current[k] = s
                changed = True
        return changed

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the pruned weights (``W *= mask``)."""
        mats = self.model.matrices()
        for k, mask in self.masks.items():
            mats[k].weight.mul_(mask.to(mats[k].weight.dtype))

    def step(self, step: int) -> None:
        """After optimizer step number ``step`` (counting from 1): update masks, apply them."""
        self.update(step)
        self.apply()

    def state_dict(self) -> dict:
        return dict(targets=dict(self.targets), start=self.start, end=self.end,
                    every=self.every, initial=dict(self.initial),
                    masks={k: v.clone() for k, v in self.masks.items()},
                    current=dict(self.current))

    def load_state_dict(self, state: dict) -> None:
        if set(state["masks"]) != set(self.masks):
            raise ValueError(f"pruner state prunes {sorted(state['masks'])}, this pruner "
                             f"{sorted(self.masks)}")
        for k, m in state["masks"].items():
            if m.shape != self.masks[k].shape:
                raise ValueError(f"pruner mask {k!r} has shape {tuple(m.shape)}, the matrix "
                                 f"{tuple(self.masks[k].shape)}")
        self.masks = {k: v.clone().to(torch.bool) for k, v in state["masks"].items()}
        self.current = dict(state["current"])
        initial = state.get("initial", 0.0)
        self.initial = (dict(initial) if isinstance(initial, dict)
                        else {k: float(initial) for k in self.targets})


@torch.no_grad()
def prune_post_training(model: nn.Module, sparsity) -> nn.Module:
    """A one-shot magnitude-pruned copy of a trained model (no retraining).

    Parameters
    ----------
    model : model.rnnt.RNNT
    sparsity : float or dict
        Per matrix, as for :class:`GradualPruner`.

    Returns
    -------
    model.rnnt.RNNT
        A new model (same quantization settings), pruned; ``model`` is unchanged. Combine with
        :func:`model.qat.quantize_post_training` for the post-training baseline.
    """
    p = copy.deepcopy(model)
    mats = p.matrices()
    for k, s in _targets(p, sparsity).items():
        mats[k].weight.mul_(prune_magnitude(magnitude(mats[k]), s).to(mats[k].weight.dtype))
    return p


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """``weight != 0`` of every matrix: the masks of a pruned model."""
    return {k: m.weight.detach() != 0 for k, m in model.matrices().items()}


def _codes(layer, w_bits):
    w, _ = layer.effective_weight()
    q, _ = quantize_weight(w.detach().to(torch.float64) * layer.col_step.to(torch.float64), w_bits)
    return q


def sparsity_report(model: nn.Module) -> dict:
    """Per-matrix and total sparsity.

    Returns
    -------
    dict
        ``{"layers": {name: {"rows", "cols", "weights", "zeros", "sparsity", "w_bits",
        "code_sparsity"}}, "weights", "zeros", "sparsity"}``; ``zeros`` counts weights equal to
        0, ``code_sparsity`` (quantized matrices) counts zero codes, which includes small weights
        that round to zero.
    """
    layers, tw, tz = {}, 0, 0
    for k, m in model.matrices().items():
        r, c = m.weight.shape
        z = int((m.weight.detach() == 0).sum())
        bits = int(m.w_bits) or None
        d = dict(rows=r, cols=c, weights=r * c, zeros=z, sparsity=z / (r * c), w_bits=bits)
        if bits:
            d["code_sparsity"] = float((_codes(m, bits) == 0).double().mean())
        layers[k] = d
        tw += r * c
        tz += z
    return dict(layers=layers, weights=tw, zeros=tz, sparsity=tz / tw)


def footprint(model: nn.Module, *, w_bits: int | None = None, word: int = 64,
              row_param_bytes: int = 9) -> dict:
    """Bytes of a model in the accelerator's compressed format, and of its fp32 weights.

    Parameters
    ----------
    model : model.rnnt.RNNT
    w_bits : {None, 4, 8}
        Width to count every matrix at (default: each matrix's own ``w_bits``; a float matrix
        then raises).
    word : int
        Weights per compressed word ``K`` (multiple of 8).
    row_param_bytes : int
        Bytes of per-row parameters (bias, multiplier, shift).

    Returns
    -------
    dict
        ``layers``: per matrix ``rows, cols, weights, nnz, w_bits, bytes`` (bitmaps, values and
        row parameters) and ``bits_per_weight`` (bitmaps and values only); ``embedding_bytes``;
        ``bytes`` (total); ``weights`` (matrix weights); ``bits_per_weight`` (total bytes * 8 /
        matrix weights); ``fp32_bytes`` (4 bytes per parameter of the float model) and
        ``ratio`` (``bytes / fp32_bytes``).
    """
    if word < 8 or word % 8:
        raise ValueError(f"footprint: word must be a positive multiple of 8, not {word}")
    layers, total, weights = {}, 0, 0
    for k, m in model.matrices().items():
        bits = w_bits or int(m.w_bits)
        if bits not in (4, 8):
            raise ValueError(f"footprint: matrix {k!r} is not quantized; pass w_bits=4 or 8")
        nz = _codes(m, bits) != 0
        r, c = nz.shape
        words = math.ceil(c / word)
        pad = torch.zeros(r, words * word, dtype=torch.bool)
        pad[:, :c] = nz
        per_word = pad.reshape(r, words, word).sum(-1)
        value_bytes = int(((per_word * bits + 7) // 8).sum())
        matrix = r * words * (word // 8) + value_bytes
        nbytes = matrix + r * row_param_bytes
        layers[k] = dict(rows=r, cols=c, weights=r * c, nnz=int(nz.sum()), w_bits=bits,
                         bytes=nbytes, bits_per_weight=8 * matrix / (r * c))
        total += nbytes
        weights += r * c
    emb = model.embedding.weight.numel()
    total += emb
    fp32 = 4 * sum(p.numel() for p in model.parameters())
    return dict(layers=layers, embedding_bytes=emb, bytes=total, weights=weights,
                bits_per_weight=8 * total / weights, fp32_bytes=fp32, ratio=total / fp32)


def random_stand_in(preset: str = "default", *, seed: int = 0, sparsity: float = 0.8,
                    w_bits: int = 4):
    """A seeded random RNN-T, pruned to ``sparsity`` and quantized to ``w_bits``: the shape,
    sparsity and width of a trained model, for timing and bit-exactness runs before one exists.
    The output layer is sharpened (weights x3, blank bias -2) and the logit scale fixed, so that
    it emits symbols rather than only blanks; its transcripts are noise."""
    from .frontend import FEATURE_DIM
    from .rnnt import rnnt
    from .text import BLANK
    torch.manual_seed(seed)
    m = rnnt(preset=preset)
    with torch.no_grad():
        m.out.weight.mul_(3.0)
        m.out.bias[BLANK] -= 2.0
    m.set_feature_normalization(torch.full((FEATURE_DIM,), -4.0),
                                torch.full((FEATURE_DIM,), 3.0))
    m = prune_post_training(m, sparsity)
    m.set_quantization(w_bits=w_bits, activations=True)
    m.logit_observer.maxabs.fill_(6.0)
    return m.eval()
