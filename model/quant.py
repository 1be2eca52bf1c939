"""Integer reference arithmetic: quantization, pruning and the exact int matrix-vector product.

This module *defines* the arithmetic the accelerator must reproduce bit for bit (the memory-format
contract in ``rtl/memfmt.py`` points here). Everything integer is computed exactly in ``int64``;
floating point appears only where a real-valued layer is turned into an integer one
(:func:`quantize_weight`, :func:`quantize_multiplier`, :func:`quantize_linear`).

Dimension letters
-----------------
``R``  rows of a layer's weight matrix = output features
``C``  columns of a layer's weight matrix = input features
``N``  optional leading batch dimension of activations

Quantization scheme
-------------------
Activations are signed ``act_bits`` (8) integers ``x_q`` with one per-tensor scale:
``x = x_q * in_scale``, ``y = y_q * out_scale``. Weights are per-row symmetric signed ``w_bits``
integers: ``W[r, c] = W_q[r, c] * w_scale[r]``. The bias is stored in accumulator units
(``w_scale[r] * in_scale``), and the accumulator is rescaled to output units by the real factor
``w_scale[r] * in_scale / out_scale``, represented as a 31-bit multiplier and a right shift
(:func:`quantize_multiplier`) and applied by :func:`requantize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "wrap", "requantize", "quantize_multiplier", "prune_magnitude", "quantize_weight",
    "QuantLinear", "quantize_linear", "random_layer", "random_input", "int_matvec",
    "int_matvec_acc", "INPUT_SCALE",
]

#: Input scale :func:`random_layer` uses: int8 codes ``[-128, 127]`` cover the real range
#: ``[-2, 2)``, so a uniform int8 input (see :func:`random_input`) is a signal of about unit RMS.
INPUT_SCALE = 1.0 / 64


# -- helpers --------------------------------------------------------------------------------

def _int_tensor(name: str, value) -> torch.Tensor:
    """``value`` as an ``int64`` tensor; refuses floating-point, complex and boolean data."""
    t = torch.as_tensor(value)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, not {t.dtype}; quantize it first")
    return t.to(torch.int64)


def _check_range(name: str, t: torch.Tensor, lo: int, hi: int, what: str) -> None:
    """Raise if any element of ``t`` lies outside ``[lo, hi]``, naming the first offender."""
    if t.numel() == 0:
        return
    bad = (t < lo) | (t > hi)
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name}{list(idx)} = {int(t[idx])} is outside {what} [{lo}, {hi}]")


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def wrap(value, bits: int) -> torch.Tensor:
    """Reduce integers to ``bits``-bit two's complement (modulo ``2**bits``).

    Parameters
    ----------
    value : array_like of int
        Any shape; converted to ``int64``.
    bits : int
        Target width, ``1 <= bits <= 63``.

    Returns
    -------
    torch.Tensor
        ``int64``, same shape, every element in ``[-2**(bits-1), 2**(bits-1))`` and congruent to
        the input modulo ``2**bits``.
    """
    if not 1 <= bits <= 63:
        raise ValueError(f"wrap: bits must be between 1 and 63, not {bits}")
    v = _int_tensor("value", value)
    half = 1 << (bits - 1)
    return ((v + half) & ((1 << bits) - 1)) - half


# -- requantization --------------------------------------------------------------------------

def requantize(acc, bias, mult, shift, *, acc_bits: int = 32, out_bits: int = 8) -> torch.Tensor:
    """Bias, rescale, round and saturate accumulators: THE definition of the hardware arithmetic.

    For every row ``r``::

        t = wrap(acc + bias[r], acc_bits)              # two's complement, acc_bits wide
        p = t * mult[r]                                # exact (fits int64: |t| <= 2**31, mult < 2**31)
        y = (p + (1 << (shift[r] - 1))) >> shift[r]    if shift[r] > 0 else p
        y = clamp(y, -2**(out_bits-1), 2**(out_bits-1) - 1)

    ``>>`` is the arithmetic (flooring) shift, so ties round half up (towards +inf): with
    ``shift = 1``, ``p = -3`` gives ``-1`` and ``p = 3`` gives ``2``.

    Parameters
    ----------
    acc : array_like of int, shape ``[..., R]``
        Accumulators. Values outside ``acc_bits`` are first wrapped (the hardware accumulates
        modulo ``2**acc_bits``), so raw sums may be passed.
    bias : array_like of int, shape ``[R]`` (or broadcastable)
        int32 biases in accumulator units.
    mult : array_like of int, shape ``[R]`` (or broadcastable)
        Multipliers, ``0 <= mult < 2**31``.
    shift : array_like of int, shape ``[R]`` (or broadcastable)
        Right shifts, ``0 <= shift < 64``; may differ per row, ``0`` means no rounding.
    acc_bits : int
        Accumulator width, ``2 <= acc_bits <= 32``.
    out_bits : int
        Output width, ``2 <= out_bits <= 32``.

    Returns
    -------
    torch.Tensor
        ``int64``, shape ``[..., R]``, values in the signed ``out_bits`` range.

    Raises
    ------
    ValueError
        Non-integer inputs, or ``bias``, ``mult``, ``shift``, ``acc_bits`` or ``out_bits``
        outside their ranges.
    """
    if not 2 <= acc_bits <= 32:
        raise ValueError(f"requantize: acc_bits must be between 2 and 32 (the 64-bit product "
                         f"must be exact), not {acc_bits}")
    if not 2 <= out_bits <= 32:
        raise ValueError(f"requantize: out_bits must be between 2 and 32, not {out_bits}")
    acc = _int_tensor("acc", acc)
    bias = _int_tensor("bias", bias)
    mult = _int_tensor("mult", mult)
    shift = _int_tensor("shift", shift)
    _check_range("bias", bias, -(1 << 31), (1 << 31) - 1, "int32")
    _check_range("mult", mult, 0, (1 << 31) - 1, "the multiplier range")
    _check_range("shift", shift, 0, 63, "the shift range")

    t = wrap(wrap(acc, acc_bits) + bias, acc_bits)
    p = t * mult                                     # |p| < 2**62: exact in int64
    rnd = torch.where(shift > 0, torch.ones_like(shift) << (shift - 1).clamp(min=0),
                      torch.zeros_like(shift))
    y = (p + rnd) >> shift                           # |p + rnd| < 2**63: no overflow
    lo, hi = _signed_range(out_bits)
    return y.clamp(lo, hi)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Represent a non-negative real scale factor as ``mult * 2**-shift``.

    For ``2**-33 <= real < 2**31`` (every scale a sane layer has) the result is normalized:
    ``2**30 <= mult < 2**31`` and ``0 <= shift <= 63``, with relative error at most ``2**-31``
    (``mult`` is ``real * 2**shift`` rounded to nearest, ties up). Outside that range the shift
    is clipped:

    * ``real < 2**-33``: ``shift = 63`` and ``mult = round(real * 2**63) < 2**30`` (fewer
      significant bits; ``0`` for ``real < 2**-64``, i.e. the row always outputs zero);
    * ``real >= 2**31``: ``shift = 0`` and ``mult = 2**31 - 1``. Any nonzero accumulator then
      saturates the output, exactly as the ideal scale would.

    Parameters
    ----------
    real : float
        The scale, ``>= 0`` and finite. ``0`` gives ``(0, 0)``.

    Returns
    -------
    (mult, shift) : tuple of int
    """
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"quantize_multiplier: the scale must be finite and >= 0, not {real}")
    if real == 0.0:
        return 0, 0
    f, e = math.frexp(real)                 # real = f * 2**e, 0.5 <= f < 1
    mult = math.floor(f * 2.0 ** 31 + 0.5)  # in [2**30, 2**31]; f * 2**31 is exact
    shift = 31 - e
    if mult == 1 << 31:
        mult >>= 1
        shift -= 1
    if shift > 63:
        return math.floor(math.ldexp(real, 63) + 0.5), 63
    if shift < 0:
        return (1 << 31) - 1, 0
    return int(mult), int(shift)


# -- pruning and weight quantization ---------------------------------------------------------

def prune_magnitude(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Magnitude pruning mask over a whole matrix.

    Keeps the ``numel - round(sparsity * numel)`` entries of largest ``|w|`` (rounding half up),
    so the mask has exactly ``round(sparsity * numel)`` zeros. Ties in ``|w|`` are broken
    deterministically: the entry with the lower flat (row-major) index is kept.

    Parameters
    ----------
    weight : torch.Tensor, any shape (typically ``[R, C]``)
        Real weights.
    sparsity : float
        Fraction of entries to remove, ``0 <= sparsity <= 1``.

    Returns
    -------
    torch.Tensor
        ``bool``, same shape as ``weight``; ``True`` where the weight is kept.
    """
    sparsity = float(sparsity)
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"prune_magnitude: sparsity must be between 0 and 1, not {sparsity}")
    w = weight.detach()
    if w.dtype.is_floating_point and not bool(torch.isfinite(w).all()):
        raise ValueError("prune_magnitude: weight contains NaN or infinity")
    n = w.numel()
    keep = n - math.floor(sparsity * n + 0.5)
    if keep == n:
        return torch.ones(w.shape, dtype=torch.bool)
    order = torch.sort(w.abs().flatten(), descending=True, stable=True).indices
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[:keep]] = True
    return mask.reshape(w.shape)


def quantize_weight(weight: torch.Tensor, w_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric weight quantization.

    ``scale[r] = max_c |W[r, c]| / (2**(w_bits-1) - 1)`` and
    ``q[r, c] = clamp(round(W[r, c] / scale[r]), -(2**(w_bits-1) - 1), 2**(w_bits-1) - 1)``
    (round half to even). The most negative code (``-8`` / ``-128``) is never produced, keeping
    the grid symmetric. An all-zero row gets ``scale = 1.0`` and zero codes. Zeros stay zero, so
    a pruned matrix keeps (at least) its sparsity; small kept weights may also round to zero.

    Parameters
    ----------
    weight : torch.Tensor, shape ``[R, C]``
        Real weights.
    w_bits : int
        4 or 8.

    Returns
    -------
    q : torch.Tensor
        ``int64``, shape ``[R, C]``.
    scale : torch.Tensor
        ``float64``, shape ``[R]``.
    """
    if w_bits not in (4, 8):
        raise ValueError(f"quantize_weight: w_bits must be 4 or 8, not {w_bits}")
    if weight.dim() != 2 or weight.shape[0] == 0 or weight.shape[1] == 0:
        raise ValueError(f"quantize_weight: weight must be a non-empty [R, C] matrix, "
                         f"not shape {tuple(weight.shape)}")
    w = weight.detach().to(torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("quantize_weight: weight contains NaN or infinity")
    qmax = (1 << (w_bits - 1)) - 1
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp(-qmax, qmax).to(torch.int64)
    return q, scale


# -- the quantized layer ---------------------------------------------------------------------

@dataclass(eq=False)
class QuantLinear:
    """A quantized (possibly sparse) fully-connected layer ``y_q = requant(W_q @ x_q + bias)``.

    Parameters
    ----------
    weight : torch.Tensor, shape ``[R, C]``
        Signed ``w_bits`` integer weights (the full range, ``-2**(w_bits-1)`` included).
    bias : torch.Tensor, shape ``[R]``
        int32 biases in accumulator units.
    mult : torch.Tensor, shape ``[R]``
        Requantization multipliers, ``0 <= mult < 2**31``.
    shift : torch.Tensor, shape ``[R]``
        Requantization shifts, ``0 <= shift < 64``.
    w_bits : int
        Weight width, 4 or 8.
    in_scale, out_scale : float, optional
        Real value of one input / output step (metadata; ``None`` for hand-built layers).
    w_scale : torch.Tensor, shape ``[R]``, optional
        Real value of one weight step per row (metadata).

    Integer fields are converted to ``int64`` tensors; anything out of range raises
    :class:`ValueError` naming the field and the offending element.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    mult: torch.Tensor
    shift: torch.Tensor
    w_bits: int
    in_scale: float | None = None
    out_scale: float | None = None
    w_scale: torch.Tensor | None = None

    def __post_init__(self):
        if self.w_bits not in (4, 8):
            raise ValueError(f"QuantLinear.w_bits must be 4 or 8, not {self.w_bits!r}")
        self.weight = _int_tensor("QuantLinear.weight", self.weight)
        if self.weight.dim() != 2 or 0 in self.weight.shape:
            raise ValueError(f"QuantLinear.weight must be a non-empty [R, C] matrix, not shape "
                             f"{tuple(self.weight.shape)}")
        R = self.weight.shape[0]
        lo, hi = _signed_range(self.w_bits)
        _check_range("QuantLinear.weight", self.weight, lo, hi, f"signed {self.w_bits}-bit")
        for name, lo, hi, what in (("bias", -(1 << 31), (1 << 31) - 1, "int32"),
                                   ("mult", 0, (1 << 31) - 1, "the multiplier range"),
                                   ("shift", 0, 63, "the shift range")):
            t = _int_tensor(f"QuantLinear.{name}", getattr(self, name))
            if tuple(t.shape) != (R,):
                raise ValueError(f"QuantLinear.{name} must have shape [R] = [{R}], not "
                                 f"{list(t.shape)}")
            _check_range(f"QuantLinear.{name}", t, lo, hi, what)
            setattr(self, name, t)
        for name in ("in_scale", "out_scale"):
            v = getattr(self, name)
            if v is not None:
                v = float(v)
                if not (math.isfinite(v) and v > 0):
                    raise ValueError(f"QuantLinear.{name} must be a positive finite float, not {v}")
                setattr(self, name, v)
        if self.w_scale is not None:
            ws = torch.as_tensor(self.w_scale, dtype=torch.float64)
            if tuple(ws.shape) != (R,):
                raise ValueError(f"QuantLinear.w_scale must have shape [R] = [{R}], not "
                                 f"{list(ws.shape)}")
            self.w_scale = ws

    @property
    def rows(self) -> int:
        """``R``, output features."""
        return int(self.weight.shape[0])

    @property
    def cols(self) -> int:
        """``C``, input features."""
        return int(self.weight.shape[1])

    @property
    def nnz(self) -> int:
        """Nonzero weights."""
        return int(torch.count_nonzero(self.weight))

    @property
    def sparsity(self) -> float:
        """Fraction of zero weights, ``1 - nnz / (R*C)``."""
        return 1.0 - self.nnz / (self.rows * self.cols)


def quantize_linear(linear: torch.nn.Linear, *, w_bits: int, in_scale: float, out_scale: float,
                    sparsity: float = 0.0) -> QuantLinear:
    """Prune and quantize a real ``torch.nn.Linear`` into a :class:`QuantLinear`.

    1. ``mask = prune_magnitude(W, sparsity)`` (whole-matrix magnitude pruning);
    2. ``W_q, w_scale = quantize_weight(W * mask, w_bits)`` (per-row symmetric);
    3. ``bias_q[r] = round(b[r] / (w_scale[r] * in_scale))`` clamped to int32 (0 without a bias);
    4. ``mult[r], shift[r] = quantize_multiplier(w_scale[r] * in_scale / out_scale)``.

    Parameters
    ----------
    linear : torch.nn.Linear
        ``in_features = C``, ``out_features = R``.
    w_bits : int
        4 or 8.
    in_scale, out_scale : float
        Real value of one int8 step of the input / output activation.
    sparsity : float
        Fraction of weights pruned before quantization (the result may be slightly sparser:
        small weights can round to zero).
    """
    for name, v in (("in_scale", in_scale), ("out_scale", out_scale)):
        if not (math.isfinite(float(v)) and float(v) > 0):
            raise ValueError(f"quantize_linear: {name} must be a positive finite float, not {v}")
    W = linear.weight.detach().to(torch.float64)
    mask = prune_magnitude(W, sparsity)
    q, w_scale = quantize_weight(W * mask, w_bits)
    R = W.shape[0]
    if linear.bias is not None:
        b = linear.bias.detach().to(torch.float64)
    else:
        b = torch.zeros(R, dtype=torch.float64)
    acc_scale = w_scale * float(in_scale)
    bias_q = torch.round(b / acc_scale).clamp(-(1 << 31), (1 << 31) - 1).to(torch.int64)
    ms = [quantize_multiplier(float(s) / float(out_scale)) for s in acc_scale]
    mult = torch.tensor([m for m, _ in ms], dtype=torch.int64)
    shift = torch.tensor([s for _, s in ms], dtype=torch.int64)
    return QuantLinear(q, bias_q, mult, shift, w_bits, in_scale=float(in_scale),
                       out_scale=float(out_scale), w_scale=w_scale)


def random_layer(rows: int, cols: int, *, sparsity: float, w_bits: int, seed: int) -> QuantLinear:
    """A reproducible random quantized layer for tests and benchmarks.

    A ``torch.nn.Linear(cols, rows)`` with PyTorch's default (Kaiming-uniform) initialization,
    drawn under ``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng` (the global RNG
    state is left untouched), quantized by :func:`quantize_linear` with

    * ``in_scale = INPUT_SCALE = 1/64``: int8 inputs cover ``[-2, 2)``;
    * ``out_scale = 4 * rms / 127``, where ``rms`` is the root-mean-square real output (over rows,
      in expectation over inputs drawn like :func:`random_input`, computed in closed form from
      the pruned real weights and bias). Outputs then use the int8 range, saturating only the
      rare ones beyond four RMS.

    Parameters
    ----------
    rows, cols : int
        ``R`` and ``C``.
    sparsity : float
        Fraction of weights pruned (see :func:`quantize_linear`).
    w_bits : int
        4 or 8.
    seed : int
        Everything is a deterministic function of the arguments.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"random_layer: rows and cols must be positive, not {rows}x{cols}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear = torch.nn.Linear(cols, rows)
    in_scale = INPUT_SCALE
    with torch.no_grad():                  # prune once, here; quantize_linear then keeps all
        linear.weight.mul_(prune_magnitude(linear.weight, sparsity))
    W = linear.weight.detach().to(torch.float64)
    b = linear.bias.detach().to(torch.float64)
    # x_q as random_input draws it: uniform over the 255 nonzero int8 codes.
    codes = torch.cat([torch.arange(-128, 0), torch.arange(1, 128)]).to(torch.float64)
    x_mean = float(codes.mean()) * in_scale
    x_var = float(codes.var(unbiased=False)) * in_scale ** 2
    y_mean = b + x_mean * W.sum(dim=1)
    y_var = x_var * (W ** 2).sum(dim=1)
    rms = float(torch.sqrt((y_mean ** 2 + y_var).mean()))
    out_scale = 4.0 * rms / 127 if rms > 0 else in_scale
    return quantize_linear(linear, w_bits=w_bits, in_scale=in_scale, out_scale=out_scale)


def random_input(cols: int, *, seed: int, zero_fraction: float = 0.0) -> torch.Tensor:
    """A reproducible random int8 activation vector with a given activation sparsity.

    Exactly ``round(zero_fraction * cols)`` (rounding half up) entries, at random positions, are
    zero; the others are uniform over the 255 nonzero int8 values ``[-128, -1] u [1, 127]``.

    Parameters
    ----------
    cols : int
        ``C``.
    seed : int
    zero_fraction : float
        ``0 <= zero_fraction <= 1``.

    Returns
    -------
    torch.Tensor
        ``int64``, shape ``[C]``.
    """
    zero_fraction = float(zero_fraction)
    if not 0.0 <= zero_fraction <= 1.0:
        raise ValueError(f"random_input: zero_fraction must be between 0 and 1, not {zero_fraction}")
    if cols < 1:
        raise ValueError(f"random_input: cols must be positive, not {cols}")
    g = torch.Generator().manual_seed(seed)
    v = torch.randint(-128, 127, (cols,), generator=g, dtype=torch.int64)  # [-128, 126]
    v = v + (v >= 0).to(torch.int64)                                       # skip 0
    n_zero = math.floor(zero_fraction * cols + 0.5)
    v[torch.randperm(cols, generator=g)[:n_zero]] = 0
    return v


# -- the integer matrix-vector product -------------------------------------------------------

def int_matvec_acc(layer: QuantLinear, x, acc_bits: int = 32, *, act_bits: int = 8) -> torch.Tensor:
    """The accumulators ``wrap(W_q @ x, acc_bits)`` of a layer, before bias and requantization.

    Parameters
    ----------
    layer : QuantLinear
    x : array_like of int, shape ``[C]`` or ``[N, C]``
        Signed ``act_bits`` activations.
    acc_bits : int
        Accumulator width (the sum is computed exactly, then wrapped).
    act_bits : int
        Activation width, for the range check.

    Returns
    -------
    torch.Tensor
        ``int64``, shape ``[R]`` or ``[N, R]``.
    """
    x = _int_tensor("x", x)
    if x.dim() not in (1, 2) or x.shape[-1] != layer.cols:
        raise ValueError(f"x must have shape [C] or [N, C] with C = {layer.cols}, not "
                         f"{list(x.shape)}")
    lo, hi = _signed_range(act_bits)
    _check_range("x", x, lo, hi, f"signed {act_bits}-bit")
    acc = torch.matmul(x, layer.weight.T)   # exact: torch's int64 matmul is integer arithmetic
    return wrap(acc, acc_bits)


def int_matvec(layer: QuantLinear, x, *, acc_bits: int = 32, act_bits: int = 8) -> torch.Tensor:
    """The exact integer output of a layer: ``requantize(wrap(W_q @ x), bias, mult, shift)``.

    This is what the accelerator's MATVEC must produce, bit for bit.

    Parameters
    ----------
    layer : QuantLinear
    x : array_like of int, shape ``[C]`` or ``[N, C]``
        Signed ``act_bits`` activations.
    acc_bits : int
        Accumulator width.
    act_bits : int
        Activation width of inputs and outputs.

    Returns
    -------
    torch.Tensor
        ``int64``, shape ``[R]`` or ``[N, R]``, values in the signed ``act_bits`` range.
    """
    acc = int_matvec_acc(layer, x, acc_bits, act_bits=act_bits)
    return requantize(acc, layer.bias, layer.mult, layer.shift, acc_bits=acc_bits,
                      out_bits=act_bits)
