"""Quantization-aware training: fake quantization (STE), lookup-table nonlinearities, observers,
the absolute-cosine regularizer, and post-training quantization.

The float model and the quantized model are the same modules (:mod:`model.rnnt`); this module
supplies the pieces their forward passes switch on. Everything here mirrors the integer
arithmetic the accelerator performs (the exact contract is in :mod:`model.rnnt`'s docstring);
where a float value and an integer code are related, ``value = code * step``.

Dimension letters
-----------------
``R``  rows of a weight matrix (output features)
``C``  columns of a weight matrix (input features)
``N``  leading batch dimensions of activations (any number)

Fake quantization and the straight-through estimator
----------------------------------------------------
:func:`fake_quant` maps ``x`` to ``clamp(floor(x / step + 0.5), lo, hi) * step``: rounding half
*up*, like :func:`model.quant.requantize` and the hardware's ``(p + (1 << (s-1))) >> s``. The
backward pass is the clipped straight-through estimator: gradient 1 where the unclamped code
lies in ``[lo, hi]``, 0 where it saturated.

Weights (:func:`fake_quant_weight`) use :func:`model.quant.quantize_weight` exactly (per-row
symmetric, round half to even, codes ``[-(2**(b-1) - 1), 2**(b-1) - 1]``), applied to the matrix
in the *integer input domain* ``W_eff[r, c] = W[r, c] * col_step[c]`` (``col_step`` is the step
of the int8 code feeding column ``c``), so that the accumulator of row ``r`` has the one step
``w_step[r]``. The gradient passes straight through to ``W``.

Lookup tables
-------------
Sigmoid and tanh are 256-entry tables indexed by an int8 code (:func:`lut`): the sigmoid's input
step is :data:`SIGMOID_IN_STEP` = 1/16 (range ``[-8, 7.94]``), the tanh's :data:`TANH_IN_STEP`
= 1/32 (range ``[-4, 3.97]``); both output int8 codes with step :data:`LUT_OUT_STEP` = 1/128::

    SIGMOID_LUT[a + 128] = clamp(floor(128 * sigmoid(a / 16) + 0.5), -128, 127)
    TANH_LUT[a + 128]    = clamp(floor(128 * tanh(a / 32) + 0.5), -128, 127)

computed in float64. In training the backward pass uses the true derivative at the quantized
input (0 where the input code saturated).

Observers
---------
:class:`Observer` keeps an exponential moving average of ``max |x|`` over training batches
(momentum :data:`OBSERVER_MOMENTUM`) while the module is in training mode and not frozen; its
step is ``maxabs / 127``. Only the joint network's logits have an observed scale: every other
activation scale of the model is fixed by design (see :mod:`model.rnnt`).

Absolute-cosine regularization (Nguyen, Alexandridis and Mouchtaris, Interspeech 2020)
----------------------------------------------------------------------------------------
Fake quantization only acts in the forward pass; ACosR adds a term to the loss whose gradient
pulls every latent weight towards its nearest quantization level. For a matrix with per-row step
``w_step[r]`` (in the integer input domain, see above; treated as a constant)::

    R(W) = mean_{r, c} (1 - |cos(pi * W_eff[r, c] / w_step[r])|)

``|cos(pi w / step)|`` is 1 exactly on the levels ``k * step`` and 0 halfway between them, so
``R`` is 0 for a matrix on its grid and about ``1 - 2/pi = 0.36`` for weights spread uniformly
between levels; its gradient, ``pi / step * sign(cos) * sin(pi w / step) / (R C)``, is zero on
the levels, largest just beside the decision thresholds, and always points to the nearest level.
Pruned weights (0, a level) feel no pull. The training loss is
``L = L_rnnt + lambda(t) * sum over matrices of (7 / qmax) R(W)`` with ``qmax = 2**(b-1) - 1``:
the mean makes ``lambda`` independent of the matrix sizes, and the factor ``7 / qmax`` (1 at 4
bits, 7/127 at 8) makes it independent of the width, since the gradient grows like
``1 / step``. :func:`acos_lambda` gives the schedule: 0 until QAT starts, then a linear ramp to
``lambda_max`` (default :data:`ACOS_LAMBDA` = 0.1), constant afterwards, so the regularizer does
not fight the weights while they are still far from trained and holds them on the grid once the
fake-quantized model converges.

Choice of ``lambda_max``: on the default preset after 760 fp32 steps (32-utterance batches of
the synthesized corpus), the RMS gradient per weight of the regularizer at ``lambda = 1`` was
0.9-1.1 times that of the RNN-T loss in the encoder LSTMs and the encoder projection (3.5 in the
first layer), 0.005-0.08 in the prediction network and output layer. ``lambda_max = 0.1``
therefore pulls with about a tenth of the loss's force where most weights are, growing
relatively as the loss gradient shrinks towards convergence. (The search tools available here
only returned the paper's abstract; the penalty above is the absolute-cosine form with its
minima on the quantization levels, the paper's stated design; the width normalization and
``lambda`` are ours.)
"""

from __future__ import annotations

import copy
import functools
import math

import torch
from torch import nn

from .quant import quantize_weight

__all__ = [
    "ACT_MIN", "ACT_MAX", "LUT_OUT_STEP", "SIGMOID_IN_STEP", "TANH_IN_STEP", "OBSERVER_MOMENTUM",
    "ACOS_LAMBDA", "round_half_up", "fake_quant", "fake_quant_weight", "fake_quant_bias", "lut",
    "lut_tables", "lut_fake", "Observer", "acos_penalty", "acos_regularizer", "acos_lambda",
    "quantize_post_training", "calibrate",
]

#: Signed int8 activation range.
ACT_MIN, ACT_MAX = -128, 127
#: Step of every LUT output (sigmoid, tanh): int8 code / 128.
LUT_OUT_STEP = 1.0 / 128
#: Input step of the sigmoid LUT (int8 codes cover ``[-8, 7.9375]``).
SIGMOID_IN_STEP = 1.0 / 16
#: Input step of the tanh LUT (int8 codes cover ``[-4, 3.96875]``).
TANH_IN_STEP = 1.0 / 32
#: EMA momentum of :class:`Observer`.
OBSERVER_MOMENTUM = 0.01
#: Default final weight ``lambda_max`` of the ACos regularizer (see :func:`acos_lambda`).
ACOS_LAMBDA = 0.1

_SIGMOID, _TANH = 0, 1


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """``floor(x + 0.5)``: the rounding of :func:`model.quant.requantize`."""
    return torch.floor(x + 0.5)


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, lo, hi):
        code = torch.floor(x / step + 0.5)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((code >= lo) & (code <= hi))
        return code.clamp_(lo, hi).mul_(step)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None


def fake_quant(x: torch.Tensor, step, lo: int = ACT_MIN, hi: int = ACT_MAX) -> torch.Tensor:
    """``clamp(floor(x / step + 0.5), lo, hi) * step`` with the clipped straight-through gradient.

    Parameters
    ----------
    x : torch.Tensor, shape ``(..., C)``
    step : float or torch.Tensor broadcastable to ``x``
        Positive step(s).
    lo, hi : int
        Code range (default the int8 range).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``; every value is a code times ``step``.
    """
    if not torch.is_tensor(step):
        step = float(step)
    return _FakeQuant.apply(x, step, float(lo), float(hi))


def fake_quant_weight(weight: torch.Tensor, w_bits: int, col_step: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric fake quantization of a weight matrix, straight-through gradient.

    ``q, w_step = quantize_weight(W * col_step, w_bits)`` (:func:`model.quant.quantize_weight`)
    and the result is ``q * w_step[r] / col_step[c]``: the real weight the integer matrix ``q``
    represents when the input code of column ``c`` has step ``col_step[c]``.

    Parameters
    ----------
    weight : torch.Tensor, shape ``(R, C)``
    w_bits : int
        4 or 8.
    col_step : torch.Tensor, shape ``(C,)``, optional
        Input code step per column (default all 1).

    Returns
    -------
    w_fq : torch.Tensor
        Shape ``(R, C)``, ``weight``'s dtype; ``d w_fq / d weight = 1``.
    w_step : torch.Tensor
        ``float64``, shape ``(R,)``: the accumulator step of each row.
    """
    w = weight.detach().to(torch.float64)
    if col_step is not None:
        w = w * col_step.to(torch.float64)
    q, w_step = quantize_weight(w, w_bits)
    deq = q.to(torch.float64) * w_step[:, None]
    if col_step is not None:
        deq = deq / col_step.to(torch.float64)
    return weight + (deq.to(weight.dtype) - weight).detach(), w_step


def fake_quant_bias(bias: torch.Tensor, acc_step: torch.Tensor) -> torch.Tensor:
    """A bias rounded to int32 accumulator units, ``round(b / acc_step) * acc_step`` (STE).

    Parameters
    ----------
    bias : torch.Tensor, shape ``(R,)``
    acc_step : torch.Tensor, shape ``(R,)``
        The accumulator step of each row (``w_step`` of :func:`fake_quant_weight`).
    """
    s = acc_step.to(torch.float64)
    q = torch.round(bias.detach().to(torch.float64) / s).clamp(-(1 << 31), (1 << 31) - 1)
    return bias + ((q * s).to(bias.dtype) - bias).detach()


# -- lookup tables ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _lut64(kind: int) -> tuple[torch.Tensor, torch.Tensor]:
    codes = torch.arange(-128, 128, dtype=torch.float64)
    if kind == _SIGMOID:
        x = codes * SIGMOID_IN_STEP
        y, d = torch.sigmoid(x), torch.sigmoid(x) * (1 - torch.sigmoid(x))
    else:
        x = codes * TANH_IN_STEP
        y, d = torch.tanh(x), 1 - torch.tanh(x) ** 2
    out = torch.floor(y / LUT_OUT_STEP + 0.5).clamp(ACT_MIN, ACT_MAX)
    return out.to(torch.int64), d


def lut(kind: str) -> torch.Tensor:
    """The 256-entry table of ``"sigmoid"`` or ``"tanh"``: ``int64`` codes, index ``a + 128``.

    See the module docstring for the definition; the accelerator's LUT memories hold these.
    """
    if kind not in ("sigmoid", "tanh"):
        raise ValueError(f"lut: kind must be 'sigmoid' or 'tanh', not {kind!r}")
    return _lut64(_SIGMOID if kind == "sigmoid" else _TANH)[0].clone()


@functools.lru_cache(maxsize=None)
def _tables(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened ``(2 * 258)`` value and derivative tables for :func:`lut_tables`."""
    vals, ders = [], []
    for kind in (_SIGMOID, _TANH):
        q, d = _lut64(kind)
        v = q.to(torch.float64) * LUT_OUT_STEP
        vals.append(torch.cat([v[:1], v, v[-1:]]))
        ders.append(torch.cat([d.new_zeros(1), d, d.new_zeros(1)]))
    return torch.cat(vals).to(dtype), torch.cat(ders).to(dtype)


def lut_tables(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and derivative tables indexed by ``code + 129 + 258 * kind``.

    ``kind`` is 0 for the sigmoid, 1 for the tanh; ``code`` is the input code clamped to
    ``[-129, 128]``. Entries ``-129`` and ``128`` repeat the end values with derivative 0: the
    clipped straight-through estimator of the saturating input quantizer, in one lookup.

    Returns
    -------
    values, derivatives : torch.Tensor
        Shape ``(516,)``, ``dtype``; values are output codes times 1/128, derivatives are
        ``f'(code * in_step)`` in real units.
    """
    return _tables(dtype)


def lut_fake(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Quantize ``x`` to the LUT's input grid and look it up, STE gradient.

    Forward: ``LUT[clamp(floor(x / in_step + 0.5), -128, 127)] / 128``. Backward: the true
    derivative at the quantized input, 0 where the input code saturated.

    Parameters
    ----------
    x : torch.Tensor, any shape
    kind : str
        ``"sigmoid"`` or ``"tanh"``.
    """
    k = _SIGMOID if kind == "sigmoid" else _TANH
    return _LutFn.apply(x, k)


class _LutFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind):
        step = SIGMOID_IN_STEP if kind == _SIGMOID else TANH_IN_STEP
        vals, ders = lut_tables(x.dtype)
        idx = (x / step).add_(0.5).floor_().clamp_(-129, 128).add_(129 + 258 * kind).long()
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(ders.take(idx))
        return vals.take(idx)

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        return grad * d, None


# -- observers --------------------------------------------------------------------------------

class Observer(nn.Module):
    """EMA of ``max |x|`` giving a symmetric int8 step, ``maxabs / 127``.

    Updates (:meth:`observe`) only in training mode and when not :attr:`frozen`; the first
    observation initializes the average. Buffers (in the state dict and the checkpoint):
    ``maxabs`` (float), ``count`` (observations so far), ``frozen`` (bool).

    Parameters
    ----------
    momentum : float
        Weight of the newest batch, default :data:`OBSERVER_MOMENTUM`.
    init : float
        ``maxabs`` before any observation.
    """

    def __init__(self, *, momentum: float = OBSERVER_MOMENTUM, init: float = 8.0):
        super().__init__()
        if not 0 < momentum <= 1:
            raise ValueError(f"Observer: momentum must be in (0, 1], not {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("maxabs", torch.tensor(float(init)))
        self.register_buffer("count", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("frozen", torch.tensor(False))

    @property
    def step(self) -> float:
        """The int8 step, ``maxabs / 127`` (never below ``1e-6``)."""
        return max(float(self.maxabs), 127e-6) / 127.0

    def observe(self, x: torch.Tensor) -> None:
        """Fold ``max |x|`` into the average (no-op when evaluating or frozen)."""
        if not self.training or bool(self.frozen) or x.numel() == 0:
            return
        m = x.detach().abs().max().to(self.maxabs.dtype)
        if not bool(torch.isfinite(m)):
            return
        if int(self.count) == 0:
            self.maxabs.copy_(m)
        else:
            self.maxabs.mul_(1 - self.momentum).add_(self.momentum * m)
        self.count.add_(1)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or resume) updating."""
        self.frozen.fill_(bool(frozen))

    def extra_repr(self) -> str:
        return f"maxabs={float(self.maxabs):.4g}, count={int(self.count)}, frozen={bool(self.frozen)}"


# -- the absolute-cosine regularizer ----------------------------------------------------------

def acos_penalty(weight_eff: torch.Tensor, w_bits: int) -> torch.Tensor:
    """``mean(1 - |cos(pi * W_eff / w_step[r])|)`` of one matrix (module docstring).

    Parameters
    ----------
    weight_eff : torch.Tensor, shape ``(R, C)``
        The matrix in the integer input domain (``W * col_step``), differentiable.
    w_bits : int
        4 or 8: the grid is :func:`model.quant.quantize_weight`'s.

    Returns
    -------
    torch.Tensor
        A scalar in ``[0, 1]``.
    """
    _, w_step = quantize_weight(weight_eff.detach(), w_bits)
    phase = weight_eff * (math.pi / w_step.to(weight_eff.dtype))[:, None]
    return (1.0 - torch.cos(phase).abs()).mean()


def acos_regularizer(model: nn.Module, w_bits: int | None = None) -> torch.Tensor:
    """Sum of :func:`acos_penalty` over the quantizable matrices of ``model``.

    Each matrix uses its own weight width (``w_bits`` buffer), or ``w_bits`` when given;
    matrices with neither (float) are skipped. A ``b``-bit matrix's penalty is scaled by
    ``7 / (2**(b-1) - 1)`` (module docstring). The model's matrices are the modules with an
    ``effective_weight()`` method (:class:`model.rnnt.QLinear`, :class:`model.rnnt.QLSTM`).
    """
    total = None
    for m in model.modules():
        if not hasattr(m, "effective_weight"):
            continue
        bits = w_bits or int(m.w_bits)
        if not bits:
            continue
        w, _ = m.effective_weight()
        p = acos_penalty(w * m.col_step.to(w.dtype), bits) * (7.0 / ((1 << (bits - 1)) - 1))
        total = p if total is None else total + p
    if total is None:
        p = next(model.parameters())
        return p.new_zeros(())
    return total


def acos_lambda(step: int, *, start: int, ramp: int, lam: float = ACOS_LAMBDA) -> float:
    """The regularizer weight at optimizer step ``step``.

    0 before ``start``; ``lam * (step - start) / ramp`` during the ramp; ``lam`` afterwards
    (``ramp = 0``: a step from 0 to ``lam`` at ``start``).
    """
    if step < start:
        return 0.0
    if ramp <= 0:
        return float(lam)
    return float(lam) * min(1.0, (step - start) / ramp)


# -- post-training quantization ---------------------------------------------------------------

@torch.no_grad()
def calibrate(model: nn.Module, batches) -> nn.Module:
    """Run float batches through ``model`` in training mode to set its observers, then freeze them.

    Parameters
    ----------
    model : model.rnnt.RNNT
    batches : iterable of ``(feats (N, T, F), lengths (N,), targets (N, U), target_lengths (N,))``

    Returns
    -------
    The same model, in evaluation mode, observers frozen.
    """
    was = model.training
    model.train()
    for obs in model.modules():
        if isinstance(obs, Observer):
            obs.freeze(False)
    for feats, lengths, targets, target_lengths in batches:
        model(feats, lengths, targets, target_lengths)
    for obs in model.modules():
        if isinstance(obs, Observer):
            obs.freeze(True)
    model.train(was)
    return model.eval()


def quantize_post_training(model: nn.Module, w_bits: int, *, calibration=None) -> nn.Module:
    """A post-training-quantized copy of a float model.

    The copy runs the same fake-quantized forward pass as a QAT model: weights per-row
    ``w_bits``, activations int8. Observers keep the scales they learned during (float)
    training unless ``calibration`` batches are given (see :func:`calibrate`); they are frozen.

    Parameters
    ----------
    model : model.rnnt.RNNT
    w_bits : int
        4 or 8.
    calibration : iterable of batches, optional

    Returns
    -------
    model.rnnt.RNNT
        A new model in evaluation mode; ``model`` is unchanged.
    """
    if w_bits not in (4, 8):
        raise ValueError(f"quantize_post_training: w_bits must be 4 or 8, not {w_bits!r}")
    q = copy.deepcopy(model)
    if calibration is not None:
        calibrate(q, calibration)
    for obs in q.modules():
        if isinstance(obs, Observer):
            obs.freeze(True)
    q.set_quantization(w_bits=w_bits, activations=True)
    return q.eval()
