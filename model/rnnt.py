"""The streaming RNN-T: LSTM encoder, prediction network, joint network; float and fake-quantized.

One set of modules serves fp32 training, post-training quantization and quantization-aware
training: :meth:`RNNT.set_quantization` switches weight fake quantization (per-row, 4 or 8 bits,
per layer) and activation fake quantization (int8) on and off. With activations quantized, the
forward pass quantizes exactly the values the accelerator holds as integers, with the same
rounding, so what the model trains is what the hardware runs.

Dimension letters
-----------------
``N``   batch
``T``   encoder frames (30 ms, :data:`model.frontend.FEATURE_DIM` features each)
``F``   features per frame, ``FEATURE_DIM = 192``
``U``   prediction steps (tokens)
``V``   vocabulary including the blank (29, blank = 0)
``H``   encoder LSTM width (``enc_hidden``); ``L`` encoder layers (``enc_layers``)
``E``   embedding width; ``P`` prediction LSTM width
``J``   joint width: the encoder and prediction outputs are already projected to ``J``

Architecture
------------
* **Encoder**: ``L`` unidirectional LSTM layers (streaming: frame ``t`` needs nothing after
  ``t``), then a linear projection ``H -> J``.
* **Prediction network**: an embedding ``V -> E`` (the blank is the start symbol), one LSTM layer
  ``E -> P``, then a linear projection ``P -> J``.
* **Joint**: ``logits = W_out tanh(enc + pred) + b_out``, ``J -> V``. ``tanh`` rather than ReLU:
  its output is bounded, so it has a fixed int8 scale and reuses the LSTM's tanh table.

Every LSTM layer (:class:`QLSTM`) computes its four gates with ONE matrix over the concatenated
input ``z_t = [x_t; h_{t-1}]``: ``W`` has shape ``(4 H, I + H)``, rows ``i, f, g, o`` (in that
order, ``H`` each), plus a bias; the forget-gate bias starts at 1. The first encoder layer folds a
fixed per-feature normalization ``(x - mean) / std`` (buffers ``in_mean``, ``in_std``, set from
the training data) into its weights and bias: its *effective* weights
(:meth:`QLSTM.effective_weight`) are what is quantized, pruned and exported.

Parameters (``rnnt(preset=...)``; :func:`count_parameters`): ``default`` (``H = 256``, ``L = 3``,
``E = 64``, ``P = 256``, ``J = 256``) has 1,979,997; ``tiny`` (``H = 16``, ``L = 2``, ``E = 8``,
``P = 16``, ``J = 16``) has 18,357, most of them in the 192-wide first layer.

Quantized arithmetic: the contract for the integer reference
------------------------------------------------------------
With activation quantization on, every quantity below is an integer code times a step; rounding
is half up (``floor(v + 0.5)``, the hardware's ``(p + (1 << (s-1))) >> s``); ``sat_b`` clamps to
the signed ``b``-bit range. Weights are per-row symmetric ``w_bits`` codes
(:func:`model.quant.quantize_weight`) of the matrix in the *integer input domain*
``W_eff[r, c] = W[r, c] * col_step[c]``, where ``col_step[c]`` is the step of the input code of
column ``c``; then the accumulator of row ``r`` is ``acc = sum_c Wq[r, c] z_q[c] + bias_q[r]``
with one step ``w_step[r]``, and ``bias_q = round(b / w_step)`` (int32). Requantization to an
output step ``s_out`` multiplies by ``w_step[r] / s_out`` (:func:`model.quant.requantize` with
:func:`model.quant.quantize_multiplier`). The float model instead computes ``acc * w_step /
s_out`` in floating point from dequantized weights, so the two can differ by one code where that
value lies within float rounding error of a rounding boundary (a tie: in float32 about one
requantized code in 10**6, none measured in float64; :func:`model.intref.compare` counts
them). The integer form of this contract, which the hardware implements, is
:mod:`model.intref`.

1. **Features**: the int8 code ``q`` of :func:`model.frontend.features_int8`, value
   ``(q + Z) * 3/32`` with ``Z = FEATURE_ZERO_POINT = -20``. In the first layer the column step
   is ``3/32`` and the input code is ``q + Z``; the hardware feeds ``q`` and folds
   ``Z * sum_{c < F} Wq[r, c]`` into ``bias_q[r]`` (exact). Every other LSTM input (an ``h`` or
   the embedding) has the step 1/128 of the recurrent half, so ``[x; h]`` shares one step; in
   the first layer the two halves keep their own steps and the difference is folded into the
   weight columns (``col_step``), so the hardware still runs one matrix-vector product over the
   concatenated int8 codes. (One shared step there would have to cover the features' range of
   about +-14 and would leave ``h`` in ``(-1, 1)`` only about 21 codes.)
2. **LSTM layer** (every encoder layer and the prediction LSTM), per step::

       z_q   = [x_q; h_q(t-1)]                    int8 codes; col_step 1/128 for h (and for
                                                  every input except the features)
       a[r]  = sat8(round(acc[r] * w_step[r] / s_a[r]))     s_a = 1/16 for rows i, f, o;
                                                            1/32 for rows g
       i, f, o = SIGMOID_LUT[a]    g = TANH_LUT[a]          int8, step 1/128 (model.qat.lut)
       c_q   = sat16(((f * c_q(t-1) + 64) >> 7) + ((i * g + 4) >> 3))     int16, step 2**-11
       tc    = TANH_LUT[sat8((c_q + 32) >> 6)]              tanh input step 1/32
       h_q   = sat8((o * tc + 64) >> 7)                     int8, step 1/128

   The state is ``(h_q, c_q)``, int8 and int16. The cell arithmetic after the gate codes is
   exact in float32, so the float model computes these integers exactly.
3. **Embedding**: an int8 table, step 1/128 (the embedding vectors are fake-quantized and
   clamped to ``[-1, 127/128]``); not pruned (it is a lookup, not a matrix-vector product).
4. **Projections**: ``enc = sat8(round(W_e h_enc))``, ``pred = sat8(round(W_p h_pred))``, both
   with output step 1/32 (:data:`JOINT_STEP`): this is what :meth:`RNNT.transcribe` and
   :meth:`RNNT.predict` return.
5. **Joint**: ``s = sat8(enc_q + pred_q)`` (step 1/32), ``j = TANH_LUT[s]`` (step 1/128),
   ``logits_q = sat8(round((W_o j) * w_step / s_logit))`` with ``s_logit`` the step of the
   logit :class:`~model.qat.Observer` (EMA of ``max |logits|`` / 127 during training, frozen
   afterwards). The host takes ``log_softmax(logits_q * s_logit)``.

All activation scales except ``s_logit`` are fixed powers of two: one sigmoid table and one tanh
table serve every layer, and the LSTM cell is shifts and small multiplies. :meth:`RNNT.quant_spec`
lists every layer's widths and steps.

Streaming
---------
``transcribe`` and ``predict`` take and return their recurrent state explicitly; transcribing a
sequence in chunks, carrying the state, gives exactly the outputs of transcribing it whole. For a
padded batch the returned state of utterance ``n`` is the state after its own ``lengths[n]``
frames.

Speed
-----
Each LSTM layer computes the input contribution ``W_x x_t + b`` for all ``t`` in one matrix
product; the time loop only does ``W_h h_{t-1}`` and the cell, in a custom autograd function
whose backward pass is hand-written BPTT (no autograd graph per step). Forward plus backward of
one layer (``N = 32``, ``T = 100``, ``H = 256``, one thread of this machine): 192 ms float,
343 ms quantized, against 589 ms for the same float loop under autograd and 634 ms with
``torch.jit.script``. A whole training step of the default preset (``N = 32``, 3 s utterances,
40 labels, forward, backward and Adam; :func:`model.train.benchmark_step`) takes 0.9 s fp32 and
1.25 s with 4-bit QAT on one thread, 0.6-0.8 s on two.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as Fn

from .frontend import FEATURE_DIM, FEATURE_SCALE, FEATURE_ZERO_POINT
from .qat import (ACT_MAX, ACT_MIN, LUT_OUT_STEP, SIGMOID_IN_STEP, TANH_IN_STEP, Observer,
                  fake_quant, fake_quant_bias, fake_quant_weight, lut_tables)
from .rnnt_loss import rnnt_loss
from .text import BLANK, VOCAB

__all__ = [
    "PRESETS", "H_STEP", "C_STEP", "C_MIN", "C_MAX", "JOINT_STEP", "QLinear", "QLSTM", "RNNT",
    "rnnt", "count_parameters",
]

#: Presets of :func:`rnnt`.
PRESETS = {
    "tiny": dict(enc_hidden=16, enc_layers=2, embed_dim=8, pred_hidden=16, joint_dim=16),
    "default": dict(enc_hidden=256, enc_layers=3, embed_dim=64, pred_hidden=256, joint_dim=256),
}

#: Step of the LSTM output ``h``, the embedding and every LUT output.
H_STEP = LUT_OUT_STEP
#: Step of the LSTM cell state (int16 codes).
C_STEP = 2.0 ** -11
C_MIN, C_MAX = -(1 << 15), (1 << 15) - 1
#: Step of the joint projections (the tanh LUT's input step).
JOINT_STEP = TANH_IN_STEP

# Feature codes as the first layer sees them: q + Z with q in [-128, 127].
_FEAT_LO, _FEAT_HI = ACT_MIN + FEATURE_ZERO_POINT, ACT_MAX + FEATURE_ZERO_POINT


# -- layers -------------------------------------------------------------------------------------

def _quantized(layer) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, b)`` of a matrix layer as used in its forward pass (see ``weight_bias``).

    Without autograd (decoding) the result is cached until a parameter or buffer the result
    depends on changes in place (tensor version counters) or is replaced.
    """
    bits = int(layer.w_bits)
    if torch.is_grad_enabled():
        layer._wcache = None
    else:
        deps = [t for t in (layer.weight, layer.bias, layer.col_step,
                            getattr(layer, "in_mean", None), getattr(layer, "in_std", None))
                if t is not None]
        key = (bits, tuple((id(t), t.data_ptr(), t._version, t.dtype) for t in deps))
        cache = getattr(layer, "_wcache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
    w, b = layer.effective_weight()
    if bits:
        w, w_step = fake_quant_weight(w, bits, layer.col_step)
        b = fake_quant_bias(b, w_step)
    if not torch.is_grad_enabled():
        layer._wcache = (key, (w, b))
    return w, b


class QLinear(nn.Module):
    """``y = x W^T + b`` with optional per-row fake-quantized weights.

    Parameters
    ----------
    in_features, out_features : int
        ``C`` and ``R``.
    in_step : float
        Step of the int8 input codes (``col_step`` of every column).

    Buffers: ``col_step`` ``(C,)``, ``w_bits`` (0 = float weights).
    """

    def __init__(self, in_features: int, out_features: int, *, in_step: float = H_STEP):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"QLinear: sizes must be positive, not {in_features} -> {out_features}")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        self.register_buffer("col_step", torch.full((in_features,), float(in_step)))
        self.register_buffer("w_bits", torch.tensor(0))

    def effective_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The real ``(W (R, C), b (R,))`` the layer computes with before weight quantization."""
        return self.weight, self.bias

    def weight_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` as used in the forward pass: fake-quantized when ``w_bits`` is set."""
        return _quantized(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., C) -> (..., R)``."""
        w, b = self.weight_bias()
        return Fn.linear(x, w, b)

    def extra_repr(self) -> str:
        r, c = self.weight.shape
        return f"{c} -> {r}, w_bits={int(self.w_bits) or 'float'}"


def _gate_consts(hidden: int, dtype: torch.dtype):
    """Per-row constants of the four gate blocks (rows i, f, g, o)."""
    def blocks(a, b):  # value a for i, f, o rows and b for g rows
        v = torch.full((4 * hidden,), float(a), dtype=dtype)
        v[2 * hidden:3 * hidden] = b
        return v
    return dict(
        inv_step=blocks(1 / SIGMOID_IN_STEP, 1 / TANH_IN_STEP),
        offset=blocks(129, 129 + 258),
        k=blocks(1, 2),          # tanh(x) = 2 sigmoid(2x) - 1
        m=blocks(1, 2),
        b=blocks(0, -1),
        km=blocks(1, 4),
    )


class _LSTMSeq(torch.autograd.Function):
    """The recurrent part of an LSTM layer over a whole sequence, with hand-written BPTT.

    Inputs ``xw (T, N, 4H)`` (input contribution plus bias), ``w_h (4H, H)``, ``h0, c0 (N, H)``,
    ``quant`` (bool). Outputs ``hs, cs (T, N, H)``. With ``quant`` the gates, cell and output
    follow the integer contract of the module docstring; gradients use the straight-through
    estimator (derivatives at the quantized points, 0 where a quantizer saturated).
    """

    @staticmethod
    def forward(ctx, xw, w_h, h0, c0, quant):
        T, N, G = xw.shape
        H = G // 4
        dt = xw.dtype
        k = _gate_consts(H, dt)
        acts = xw.new_empty(T, N, G)
        dacts = xw.new_empty(T, N, G)
        hs = xw.new_empty(T, N, H)
        cs = xw.new_empty(T, N, H)
        tcs = xw.new_empty(T, N, H)
        dtcs = xw.new_empty(T, N, H)
        cmask = torch.ones(T, N, H, dtype=torch.bool) if quant else None
        if quant:
            vals, ders = lut_tables(dt)
        h, c = h0, c0
        wt = w_h.t()
        for t in range(T):
            a = torch.addmm(xw[t], h, wt)
            if quant:
                idx = a.mul_(k["inv_step"]).add_(0.5).floor_().clamp_(-129, 128).add_(k["offset"]).long()
                act = vals.take(idx)
                dact = ders.take(idx)
            else:
                s = torch.sigmoid(a.mul_(k["k"]))
                dact = s * (1 - s) * k["km"]
                act = s.mul_(k["m"]).add_(k["b"])
            i, f, g, o = act.chunk(4, 1)
            if quant:
                cc = (f * c).mul_(1 / C_STEP).add_(0.5).floor_()
                cc += (i * g).mul_(1 / C_STEP).add_(0.5).floor_()
                torch.logical_and(cc >= C_MIN, cc <= C_MAX, out=cmask[t])
                c = cc.clamp_(C_MIN, C_MAX).mul_(C_STEP)
                idx = (c * (1 / TANH_IN_STEP)).add_(0.5).floor_().clamp_(-129, 128).add_(129 + 258).long()
                tc = vals.take(idx)
                dtc = ders.take(idx)
                h = (o * tc).mul_(1 / H_STEP).add_(0.5).floor_().clamp_(ACT_MIN, ACT_MAX).mul_(H_STEP)
            else:
                c = f * c + i * g
                tc = torch.tanh(c)
                dtc = 1 - tc * tc
                h = o * tc
            acts[t] = act
            dacts[t] = dact
            hs[t] = h
            cs[t] = c
            tcs[t] = tc
            dtcs[t] = dtc
        ctx.quant = quant
        ctx.save_for_backward(w_h, h0, c0, acts, dacts, hs, cs, tcs, dtcs,
                              cmask if quant else torch.empty(0))
        return hs, cs

    @staticmethod
    def backward(ctx, dhs, dcs):
        w_h, h0, c0, acts, dacts, hs, cs, tcs, dtcs, cmask = ctx.saved_tensors
        T, N, G = acts.shape
        H = G // 4
        dA = acts.new_empty(T, N, G)
        dh = h0.new_zeros(N, H)
        dc = c0.new_zeros(N, H)
        for t in range(T - 1, -1, -1):
            if dhs is not None:
                dh = dh + dhs[t]
            if dcs is not None:
                dc = dc + dcs[t]
            i, f, g, o = acts[t].chunk(4, 1)
            dct = dc + dh * o * dtcs[t]
            if ctx.quant:
                dct = dct * cmask[t]
            cprev = cs[t - 1] if t else c0
            da = torch.cat([dct * g, dct * cprev, dct * i, dh * tcs[t]], 1).mul_(dacts[t])
            dA[t] = da
            dc = dct * f
            dh = da @ w_h
        hprev = torch.cat([h0[None], hs[:-1]])
        dw = dA.reshape(T * N, G).t() @ hprev.reshape(T * N, H)
        return dA, dw, dh, dc, None


class QLSTM(nn.Module):
    """One LSTM layer whose gates come from one matrix over ``[x_t; h_{t-1}]``.

    Parameters
    ----------
    input_size, hidden_size : int
        ``I`` and ``H``.
    in_step : float
        Step of the input codes (1/128 for an LSTM or embedding input, 3/32 for features).
    in_range : (int, int)
        Code range of the input (int8 by default; ``(-148, 107)`` for features).
    quantize_input : bool
        Fake-quantize the input in activation mode (needed for inputs that are not already
        codes, i.e. the features).
    normalize : bool
        Fold a per-input normalization ``(x - in_mean) / in_std`` into the effective weights.

    Parameters and buffers: ``weight (4H, I + H)``, ``bias (4H,)``, ``col_step (I + H,)``,
    ``w_bits``, and with ``normalize`` ``in_mean, in_std (I,)`` (identity until set).
    """

    def __init__(self, input_size: int, hidden_size: int, *, in_step: float = H_STEP,
                 in_range: tuple[int, int] = (ACT_MIN, ACT_MAX), quantize_input: bool = False,
                 normalize: bool = False):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"QLSTM: sizes must be positive, not {input_size}, {hidden_size}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.in_step, self.in_range = float(in_step), tuple(int(v) for v in in_range)
        self.quantize_input, self.normalize = bool(quantize_input), bool(normalize)
        H = hidden_size
        self.weight = nn.Parameter(torch.empty(4 * H, input_size + H))
        self.bias = nn.Parameter(torch.zeros(4 * H))
        bound = 1.0 / math.sqrt(H)
        nn.init.uniform_(self.weight, -bound, bound)
        with torch.no_grad():
            self.bias[H:2 * H] = 1.0
        self.register_buffer("col_step", torch.cat([torch.full((input_size,), float(in_step)),
                                                    torch.full((H,), H_STEP)]))
        self.register_buffer("w_bits", torch.tensor(0))
        if normalize:
            self.register_buffer("in_mean", torch.zeros(input_size))
            self.register_buffer("in_std", torch.ones(input_size))

    def effective_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W (4H, I+H), b (4H,))`` on un-normalized inputs: the matrix that is quantized."""
        if not self.normalize:
            return self.weight, self.bias
        I = self.input_size
        wx = self.weight[:, :I] / self.in_std
        w = torch.cat([wx, self.weight[:, I:]], 1)
        return w, self.bias - wx @ self.in_mean

    def weight_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` as used in the forward pass: fake-quantized when ``w_bits`` is set."""
        return _quantized(self)

    def forward(self, x: torch.Tensor, state=None, lengths: torch.Tensor | None = None,
                quant: bool = False):
        """Run the layer over a sequence.

        Parameters
        ----------
        x : torch.Tensor, shape ``(N, T, I)``
        state : (h (N, H), c (N, H)), optional
            Initial state (zeros by default).
        lengths : torch.Tensor, shape ``(N,)``, optional
            Valid frames per sequence; the returned state is taken at each one's end.
        quant : bool
            Activation quantization.

        Returns
        -------
        hs : torch.Tensor, shape ``(N, T, H)``
        state : (h (N, H), c (N, H))
        """
        N, T, _ = x.shape
        H = self.hidden_size
        if state is None:
            h0 = x.new_zeros(N, H)
            c0 = x.new_zeros(N, H)
        else:
            h0, c0 = state
        if quant and self.quantize_input:
            x = fake_quant(x, self.in_step, *self.in_range)
        w, b = self.weight_bias()
        I = self.input_size
        xw = torch.addmm(b, x.transpose(0, 1).reshape(T * N, I), w[:, :I].t()).reshape(T, N, 4 * H)
        hs, cs = _LSTMSeq.apply(xw, w[:, I:], h0, c0, bool(quant))
        if lengths is None:
            hT, cT = (hs[-1], cs[-1]) if T else (h0, c0)
        else:
            ar = torch.arange(N)
            hT = torch.cat([h0[None], hs])[lengths, ar]
            cT = torch.cat([c0[None], cs])[lengths, ar]
        return hs.transpose(0, 1), (hT, cT)

    def extra_repr(self) -> str:
        return (f"{self.input_size} -> {self.hidden_size}, in_step={self.in_step:g}, "
                f"w_bits={int(self.w_bits) or 'float'}")


def _join_act(s: torch.Tensor, quant: bool, derivative: bool = True):
    """The joint activation of ``s = enc + pred`` and (``derivative``; else None) the
    derivative its backward uses.

    Float: ``tanh(s)`` and ``tanh'(s)``. Quantized (``s`` on the 1/32 grid):
    ``TANH_LUT[sat8(s / (1/32))] / 128`` and ``tanh'`` at the clamped input, a straight-through
    estimate (about 0.0013 where it saturated: the clamp's own zero gradient would cost two
    passes over the largest tensor for nothing). Overwrites nothing of ``s``.
    """
    if not quant:
        t = torch.tanh(s)
        return t, (t * t).neg_().add_(1) if derivative else None
    t = s.clamp(ACT_MIN * JOINT_STEP, ACT_MAX * JOINT_STEP).tanh_()
    y = (t * (1 / LUT_OUT_STEP)).add_(0.5).floor_().clamp_(ACT_MIN, ACT_MAX).mul_(LUT_OUT_STEP)
    return y, t.mul_(t).neg_().add_(1) if derivative else None


class _JoinTanh(torch.autograd.Function):
    """The quantized joint activation of :func:`_join_act` with its straight-through gradient."""

    @staticmethod
    def forward(ctx, s):
        y, d = _join_act(s, True, ctx.needs_input_grad[0])
        if d is not None:
            ctx.save_for_backward(d)
        return y

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        return grad * d


#: Frames per chunk of :class:`_LatticeJoint` (a chunk's ``(N, 4, U+1, J)`` activations stay
#: in cache; 2-8 measured alike, 1.8x faster than unchunked autograd for N=32, T=100, U=41).
LATTICE_CHUNK = 4


class _LatticeJoint(torch.autograd.Function):
    """Training lattice of the joint network without keeping its activations.

    ``logits[n, t, u] = act(enc[n, t] + pred[n, u]) W^T + b`` for ``enc (N, T, J)``,
    ``pred (N, U1, J)``, ``W (V, J)``, ``b (V,)`` (``act``: :func:`_join_act`). The same values
    as :meth:`RNNT.join` on the broadcast lattice, computed :data:`LATTICE_CHUNK` frames at a
    time; autograd through ``join`` would keep two ``(N, T, U1, J)`` tensors (the activation
    and its derivative, the largest tensors of a training step) and pass over them several
    times, where the backward here recomputes each chunk's activations from ``enc`` and
    ``pred`` while they are in cache.
    """

    @staticmethod
    def forward(ctx, enc, pred, w, b, quant: bool):
        N, T, _ = enc.shape
        out = enc.new_empty(N, T, pred.shape[1], w.shape[0])
        for t0 in range(0, T, LATTICE_CHUNK):
            a, _ = _join_act(enc[:, t0:t0 + LATTICE_CHUNK, None, :] + pred[:, None], quant, False)
            out[:, t0:t0 + LATTICE_CHUNK] = Fn.linear(a, w, b)
        ctx.save_for_backward(enc, pred, w)
        ctx.quant = quant
        return out

    @staticmethod
    def backward(ctx, grad):
        enc, pred, w = ctx.saved_tensors
        T, J = enc.shape[1], enc.shape[2]
        g_enc, g_pred, g_w = torch.empty_like(enc), torch.zeros_like(pred), torch.zeros_like(w)
        for t0 in range(0, T, LATTICE_CHUNK):
            a, d = _join_act(enc[:, t0:t0 + LATTICE_CHUNK, None, :] + pred[:, None], ctx.quant)
            g = grad[:, t0:t0 + LATTICE_CHUNK]
            ds = torch.matmul(g, w).mul_(d)                          # (N, chunk, U1, J)
            g_enc[:, t0:t0 + LATTICE_CHUNK] = ds.sum(2)
            g_pred += ds.sum(1)
            g_w += g.reshape(-1, g.shape[-1]).t() @ a.reshape(-1, J)
        return g_enc, g_pred, g_w, grad.sum((0, 1, 2)), None


# -- the model ----------------------------------------------------------------------------------

class RNNT(nn.Module):
    """A streaming RNN transducer (see the module docstring).

    Parameters (keyword only)
    -------------------------
    enc_hidden, enc_layers : int
        ``H`` and ``L``.
    embed_dim, pred_hidden : int
        ``E`` and ``P``.
    joint_dim : int
        ``J``.
    feature_dim : int
        ``F`` (default :data:`model.frontend.FEATURE_DIM`).
    vocab_size : int
        ``V`` (default ``len(model.text.VOCAB)``).
    blank : int
        Blank index (default :data:`model.text.BLANK`).

    Attributes
    ----------
    hparams : dict
        The constructor's arguments (saved in checkpoints).
    """

    def __init__(self, *, enc_hidden: int, enc_layers: int, embed_dim: int, pred_hidden: int,
                 joint_dim: int, feature_dim: int = FEATURE_DIM, vocab_size: int = len(VOCAB),
                 blank: int = BLANK):
        super().__init__()
        for name, v in (("enc_hidden", enc_hidden), ("enc_layers", enc_layers),
                        ("embed_dim", embed_dim), ("pred_hidden", pred_hidden),
                        ("joint_dim", joint_dim), ("feature_dim", feature_dim),
                        ("vocab_size", vocab_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"RNNT: {name} must be a positive integer, not {v!r}")
        if not 0 <= blank < vocab_size:
            raise ValueError(f"RNNT: blank must be in [0, {vocab_size}), not {blank}")
        self.hparams = dict(enc_hidden=enc_hidden, enc_layers=enc_layers, embed_dim=embed_dim,
                            pred_hidden=pred_hidden, joint_dim=joint_dim,
                            feature_dim=feature_dim, vocab_size=vocab_size, blank=blank)
        self.blank = blank
        self.vocab_size = vocab_size
        layers = [QLSTM(feature_dim, enc_hidden, in_step=FEATURE_SCALE,
                        in_range=(_FEAT_LO, _FEAT_HI), quantize_input=True, normalize=True)]
        layers += [QLSTM(enc_hidden, enc_hidden) for _ in range(enc_layers - 1)]
        self.encoder = nn.ModuleList(layers)
        self.enc_proj = QLinear(enc_hidden, joint_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        nn.init.uniform_(self.embedding.weight, -0.5, 0.5)
        self.pred_lstm = QLSTM(embed_dim, pred_hidden)
        self.pred_proj = QLinear(pred_hidden, joint_dim)
        self.out = QLinear(joint_dim, vocab_size)
        self.logit_observer = Observer()
        self.register_buffer("act_quant", torch.tensor(False))
        #: Training-only regularization (not saved; training sets it from its configuration):
        #: in training mode, the fraction of the encoder layers' outputs and of the prediction
        #: network's embeddings and LSTM outputs zeroed at random (inverted dropout). Evaluation
        #: mode, decoding and the integer reference never see it.
        self.dropout = 0.0

    # -- configuration ------------------------------------------------------------------------

    def matrices(self) -> dict[str, nn.Module]:
        """The quantizable, prunable matrices by name, in execution order."""
        out = {f"encoder.{i}": m for i, m in enumerate(self.encoder)}
        out["enc_proj"] = self.enc_proj
        out["pred_lstm"] = self.pred_lstm
        out["pred_proj"] = self.pred_proj
        out["out"] = self.out
        return out

    def set_quantization(self, *, w_bits: int | None, activations: bool | None = None,
                         overrides: dict[str, int | None] | None = None) -> "RNNT":
        """Switch fake quantization.

        Parameters
        ----------
        w_bits : {None, 4, 8}
            Weight width of every matrix (None: float weights).
        activations : bool, optional
            int8 activation quantization (default: on iff ``w_bits`` is set).
        overrides : dict, optional
            Per-matrix widths by :meth:`matrices` name, e.g. ``{"out": 8}``.
        """
        mats = self.matrices()
        for name, bits in [(None, w_bits)] + list((overrides or {}).items()):
            if bits not in (None, 4, 8):
                raise ValueError(f"set_quantization: w_bits must be None, 4 or 8, not {bits!r}")
            if name is not None and name not in mats:
                raise ValueError(f"set_quantization: no matrix {name!r}; the matrices are "
                                 f"{', '.join(mats)}")
        for name, m in mats.items():
            bits = (overrides or {}).get(name, w_bits)
            m.w_bits.fill_(bits or 0)
        self.act_quant.fill_(bool(w_bits is not None if activations is None else activations))
        return self

    @property
    def w_bits(self) -> dict[str, int | None]:
        """Weight width per matrix (None = float)."""
        return {n: (int(m.w_bits) or None) for n, m in self.matrices().items()}

    def set_feature_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the first layer's fixed input normalization, ``(x - mean) / std`` per feature."""
        F = self.hparams["feature_dim"]
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (F,) or std.shape != (F,):
            raise ValueError(f"set_feature_normalization: mean and std must have shape ({F},), "
                             f"not {tuple(mean.shape)} and {tuple(std.shape)}")
        if not bool((std > 0).all()) or not bool(torch.isfinite(mean).all()):
            raise ValueError("set_feature_normalization: std must be positive and mean finite")
        self.encoder[0].in_mean.copy_(mean)
        self.encoder[0].in_std.copy_(std)

    def quant_spec(self) -> dict:
        """Every quantization point: per matrix its width, input steps and output steps.

        JSON-compatible; saved in checkpoints for the compiler. Steps are real values of one
        code; ``w_step`` (per row) follows from the weights (:func:`model.quant.quantize_weight`
        of the effective weights times ``col_step``).
        """
        layers = {}
        for name, m in self.matrices().items():
            if isinstance(m, QLSTM):
                H = m.hidden_size
                layers[name] = dict(
                    kind="lstm", rows=4 * H, cols=m.input_size + H, w_bits=int(m.w_bits) or None,
                    in_step=m.in_step, in_range=list(m.in_range), h_step=H_STEP,
                    gate_steps={"i": SIGMOID_IN_STEP, "f": SIGMOID_IN_STEP, "g": TANH_IN_STEP,
                                "o": SIGMOID_IN_STEP},
                    c_step=C_STEP, c_bits=16, tanh_c_in_step=TANH_IN_STEP, out_step=H_STEP)
            else:
                r, c = m.weight.shape
                out_step = self.logit_observer.step if name == "out" else JOINT_STEP
                layers[name] = dict(kind="linear", rows=r, cols=c, w_bits=int(m.w_bits) or None,
                                    in_step=float(m.col_step[0]), out_step=out_step)
        return dict(
            activations=bool(self.act_quant), layers=layers,
            feature=dict(step=FEATURE_SCALE, zero_point=FEATURE_ZERO_POINT),
            embedding=dict(step=H_STEP, rows=self.vocab_size, cols=self.hparams["embed_dim"]),
            joint=dict(in_step=JOINT_STEP, tanh_out_step=LUT_OUT_STEP,
                       logit_step=self.logit_observer.step),
            lut=dict(sigmoid_in_step=SIGMOID_IN_STEP, tanh_in_step=TANH_IN_STEP,
                     out_step=LUT_OUT_STEP),
        )

    # -- the three stages ---------------------------------------------------------------------

    def init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero encoder state ``(h (L, N, H), c (L, N, H))``."""
        L, H = self.hparams["enc_layers"], self.hparams["enc_hidden"]
        return torch.zeros(L, batch, H), torch.zeros(L, batch, H)

    def transcribe(self, feats: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        """Encode features.

        Parameters
        ----------
        feats : torch.Tensor, shape ``(N, T, F)``
            :func:`model.frontend.features` values, zero-padded.
        lengths : torch.Tensor, shape ``(N,)``, optional
            Valid frames (default all ``T``).
        state : (h (L, N, H), c (L, N, H)), optional
            Encoder state after the previous chunk (default zeros).

        Returns
        -------
        enc : torch.Tensor, shape ``(N, T, J)``
            Projected encoder output (step 1/32 codes in activation mode).
        lengths : torch.Tensor, shape ``(N,)``
        state : (h (L, N, H), c (L, N, H))
            State after each utterance's last valid frame.
        """
        if feats.dim() != 3 or feats.shape[-1] != self.hparams["feature_dim"]:
            raise ValueError(f"transcribe: feats must have shape (N, T, "
                             f"{self.hparams['feature_dim']}), not {tuple(feats.shape)}")
        N, T, _ = feats.shape
        if lengths is None:
            lengths = torch.full((N,), T, dtype=torch.int64)
        quant = bool(self.act_quant)
        x = feats
        hs, cs = [], []
        for l, layer in enumerate(self.encoder):
            st = None if state is None else (state[0][l], state[1][l])
            x, (h, c) = layer(x, st, lengths, quant)
            x = self._drop(x)
            hs.append(h)
            cs.append(c)
        enc = self.enc_proj(x)
        if quant:
            enc = fake_quant(enc, JOINT_STEP)
        return enc, lengths, (torch.stack(hs), torch.stack(cs))

    def predict(self, tokens: torch.Tensor, state=None):
        """Run the prediction network.

        Parameters
        ----------
        tokens : torch.Tensor, int64, shape ``(N, U)``
            Previous symbols; the first step of a hypothesis gets the blank.
        state : (h (1, N, P), c (1, N, P)), optional

        Returns
        -------
        pred : torch.Tensor, shape ``(N, U, J)``
        state : (h (1, N, P), c (1, N, P))
        """
        quant = bool(self.act_quant)
        e = self.embedding(tokens)
        if quant:
            e = fake_quant(e, H_STEP)
        e = self._drop(e)
        st = None if state is None else (state[0][0], state[1][0])
        y, (h, c) = self.pred_lstm(e, st, None, quant)
        p = self.pred_proj(self._drop(y))
        if quant:
            p = fake_quant(p, JOINT_STEP)
        return p, (h[None], c[None])

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """:attr:`dropout` in training mode, the identity otherwise."""
        if self.training and self.dropout > 0:
            return Fn.dropout(x, self.dropout, training=True)
        return x

    def join(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Joint network: ``enc (..., J)`` and ``pred (..., J)`` broadcast to logits ``(..., V)``."""
        s = enc + pred
        if bool(self.act_quant):
            j = _JoinTanh.apply(s)
        else:
            j = torch.tanh(s)
        return self._logits(self.out(j))

    def _logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The joint's output stage: observe the logits' range, fake-quantize them in
        activation mode."""
        self.logit_observer.observe(logits)
        if bool(self.act_quant):
            logits = fake_quant(logits, self.logit_observer.step)
        return logits

    def forward(self, feats, lengths, targets, target_lengths=None) -> torch.Tensor:
        """Logits of the whole lattice for training.

        Parameters
        ----------
        feats : (N, T, F); lengths : (N,)
        targets : torch.Tensor, int64, shape ``(N, U)``
            Labels ``1 .. V-1``, padded with anything.
        target_lengths : (N,), unused here (the loss needs it)

        Returns
        -------
        torch.Tensor, shape ``(N, T, U + 1, V)``
        """
        return self._lattice(feats, lengths, targets)[0]

    def _lattice_inputs(self, feats, lengths, targets):
        """``(enc (N, T, J), pred (N, U + 1, J))``: the encoder output and the prediction
        network's output after the blank and each target label."""
        enc, _, _ = self.transcribe(feats, lengths)
        N = targets.shape[0]
        tokens = torch.cat([torch.full((N, 1), self.blank, dtype=torch.int64),
                            targets.to(torch.int64)], 1)
        pred, _ = self.predict(tokens)
        return enc, pred

    def _lattice(self, feats, lengths, targets):
        """``(logits (N, T, U + 1, V), enc (N, T, J))``."""
        enc, pred = self._lattice_inputs(feats, lengths, targets)
        # join(enc[:, :, None], pred[:, None]), without keeping the lattice's activations
        w, b = self.out.weight_bias()
        return self._logits(_LatticeJoint.apply(enc, pred, w, b, bool(self.act_quant))), enc

    def loss(self, feats, lengths, targets, target_lengths, *, ctc_head: nn.Module | None = None):
        """Mean RNN-T negative log-likelihood per utterance (:func:`model.rnnt_loss.rnnt_loss`).

        With ``ctc_head`` (a training-only ``J -> V`` layer on the encoder output, not part of
        the model), returns ``(rnnt, ctc)``: also the mean CTC negative log-likelihood per
        utterance of the encoder alone, an auxiliary loss that speeds up learning alignments.
        """
        logits, enc = self._lattice(feats, lengths, targets)
        loss = rnnt_loss(logits, targets.to(torch.int64), lengths, target_lengths,
                         blank=self.blank, reduction="mean")
        if ctc_head is None:
            return loss
        lp = Fn.log_softmax(ctc_head(enc), dim=-1).transpose(0, 1)      # (T, N, V)
        ctc = Fn.ctc_loss(lp, targets.to(torch.int64), lengths, target_lengths,
                          blank=self.blank, reduction="sum", zero_infinity=True) / len(targets)
        return loss, ctc


def rnnt(*, preset: str = "default", **overrides) -> RNNT:
    """Build an :class:`RNNT` from a named preset (``"tiny"`` or ``"default"``) and overrides.

    Examples
    --------
    >>> m = rnnt(preset="tiny", enc_layers=1)
    """
    if preset not in PRESETS:
        raise ValueError(f"rnnt: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    kw = dict(PRESETS[preset])
    kw.update(overrides)
    return RNNT(**kw)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
