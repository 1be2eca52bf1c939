"""The integer RNN-T: the exact arithmetic the accelerator implements, as integer PyTorch.

This module *defines* the hardware's arithmetic for the whole speech model. It is the integer
form of the contract in :mod:`model.rnnt` ("Quantized arithmetic: the contract for the integer
reference"); every formula below is that contract with the integer formats made explicit, and
the fake-quantized :class:`~model.rnnt.RNNT` computes the same codes except at ties, where its
float rounding decides differently (see "Agreement" below). The accelerator, its compiler and
its simulators are compared bit for bit with :class:`IntRNNT`.

No floating point is involved in the datapath: activations, weights and accumulators are
integer tensors, the matrix products run on ``int32`` tensors (the accumulator width) and the
requantization products on ``int64``. Floats appear only where a trained model is turned into
integers (:meth:`IntRNNT.from_model`), as metadata (the step of each code), and on the host,
which takes ``log_softmax`` of the dequantized logits for the search.

Dimension letters
-----------------
``N`` optional leading batch dimension (every stage method takes one or none)
``T`` encoder frames; ``F`` features per frame (192); ``U`` prediction steps
``L`` encoder layers; ``H`` encoder width; ``E`` embedding width; ``P`` prediction width
``J`` joint width; ``V`` vocabulary (blank included); ``R``, ``C`` rows and columns of a matrix

Notation
--------
``>>`` is the arithmetic (flooring) right shift; ``sat_b(x)`` clamps to
``[-2**(b-1), 2**(b-1) - 1]``; ``rshr(x, s) = (x + (1 << (s-1))) >> s`` is a right shift that
rounds half up (towards +inf, also for negative ``x``: ``rshr(-3, 1) = -1``,
``rshr(3, 1) = 2``), the only rounding the hardware does.

Formats (integer code x step = real value)
------------------------------------------
=====================  =========  ==================  ==========================================
tensor                 container  step                notes
=====================  =========  ==================  ==========================================
feature ``x``          int8       3/32                value ``(x + Z) * 3/32``, ``Z = -20``
LSTM output ``h``      int8       1/128               also the embedding and every LUT output
gate input ``a``       int8       1/16 (i, f, o),     the LUT index is ``a + 128``
                                  1/32 (g)
gate ``i f g o``       int8       1/128               ``SIGMOID_LUT`` (0..127), ``TANH_LUT``
cell ``c``             int16      2**-11              range about +-16
``tanh(c)`` input      int8       1/32
``enc``, ``pred``      int8       1/32                joint sum ``s`` too
joint ``j``            int8       1/128               ``TANH_LUT[s]``
logits                 int8       ``s_logit``         :attr:`IntRNNT.logit_step`
weights ``Wq``         w_bits     (per row, column)   ``w_step[r] / col_step[c]``; 4 or 8 bits,
                                                      symmetric ``[-qmax, qmax]`` in an int8
accumulator, bias      int32      ``w_step[r]``       never wraps (checked, see below)
multiplier ``m``       uint31     --                  ``2**30 <= m < 2**31`` (normalized)
shift ``s``            uint6      --                  ``0 <= s <= 63``
=====================  =========  ==================  ==========================================

Matrix-vector product and requantization (every matrix)
-------------------------------------------------------
Each of the ``L + 5`` matrices (:meth:`model.rnnt.RNNT.matrices`: ``encoder.0 ..
encoder.{L-1}``, ``enc_proj``, ``pred_lstm``, ``pred_proj``, ``out``) is a
:class:`model.quant.QuantLinear` ``(Wq, bias, mult, shift)`` and computes, for row ``r``::

    acc[r] = sum_c Wq[r, c] * z[c] + bias[r]                  int32 (exact; see the bound below)
    y[r]   = sat_8(rshr(acc[r] * mult[r], shift[r]))          int64 product, int8 result

which is :func:`model.quant.requantize` with ``acc_bits = 32``, ``out_bits = 8``
(``shift = 0``: no rounding). The parameters come from the fake-quantized model:

* ``Wq, w_step = quantize_weight(W_eff * col_step, w_bits)`` (:func:`model.quant.quantize_weight`,
  per-row symmetric, half to even) where ``W_eff`` is the layer's effective weight (the first
  layer's feature normalization folded in) and ``col_step[c]`` the step of input column ``c``:
  3/32 for the features, 1/128 for every ``h``, embedding and joint input. One matrix therefore
  serves the concatenated ``[x; h]`` of the first layer although its halves have different
  steps: the difference lives in the weight codes.
* ``bias[r] = round(b_eff[r] / w_step[r])`` (half to even, as
  :func:`model.qat.fake_quant_bias`), and in the first layer plus ``Z * sum_{c < F} Wq[r, c]``:
  the hardware feeds the raw feature code ``x`` where the model's column holds ``x + Z``
  (exact).
* ``mult[r], shift[r] = quantize_multiplier(w_step[r] / out_step[r])``
  (:func:`model.quant.quantize_multiplier`: ``mult`` is the ratio's 31-bit mantissa, rounded to
  nearest) with ``out_step`` the step of the output: 1/16 or 1/32 per gate block in an LSTM,
  1/32 for the projections, ``s_logit`` for ``out``.

:meth:`IntRNNT.from_model` checks ``sum_c |Wq[r, c]| * 128 + |bias[r]| < 2**31`` for every row,
so the int32 accumulator cannot overflow for any input: the hardware's wrap-around never occurs.

LSTM step (encoder layers and prediction LSTM), order of operations
-------------------------------------------------------------------
Rows of ``W`` are the gate blocks ``i, f, g, o`` (``H`` rows each); state ``(h, c)`` int8 and
int16, zero at the start::

    z  = [x; h(t-1)]                                 int8 codes, I + H of them
    a  = matvec + requantize (above)                 int8 (step 1/16 or 1/32 per block)
    i  = SIGMOID_LUT[a_i]   f = SIGMOID_LUT[a_f]     int8 in [0, 127], step 1/128
    g  = TANH_LUT[a_g]      o = SIGMOID_LUT[a_o]
    c  = sat_16(rshr(f * c(t-1), 7) + rshr(i * g, 3))        int16, step 2**-11
    tc = TANH_LUT[sat_8(rshr(c, 6))]                         tanh input step 1/32
    h  = sat_8(rshr(o * tc, 7))                              int8, step 1/128

Widths: ``f * c`` fits 23 bits signed, ``i * g`` 15; the sum before ``sat_16`` fits 17 bits;
``o * tc`` 15 bits (``h`` never actually saturates: ``|o * tc| <= 127 * 128``). The LUTs are
:func:`model.qat.lut` (256 entries, index ``code + 128``; sigmoid input step 1/16, tanh 1/32,
output step 1/128, computed in float64 and rounded half up).

The model
---------
* **Encoder step** (:meth:`IntRNNT.encoder_step`): ``x`` (int8 feature codes) through the ``L``
  LSTM layers (layer ``l + 1``'s ``x`` is layer ``l``'s new ``h``), then
  ``enc = matvec_requant(enc_proj, h_{L-1})`` (step 1/32).
* **Prediction step** (:meth:`IntRNNT.predict_step`): ``e = EMBEDDING[token]`` (int8 table,
  step 1/128, half-up rounding of the trained table clamped to int8; the blank is the start
  symbol), the prediction LSTM over ``[e; h]``, then ``pred = matvec_requant(pred_proj, h)``.
* **Joint** (:meth:`IntRNNT.join`): ``s = sat_8(enc + pred)``, ``j = TANH_LUT[s]``,
  ``logits = matvec_requant(out, j)`` (int8, step ``s_logit``).
* **Host**: ``log_softmax(logits * s_logit)`` in float32 (what :func:`model.decode.greedy_ids`
  and :func:`model.decode.beam_search` do with :class:`IntDecoder`).

Streaming is exact: the state is explicit, so a sequence fed frame by frame, in chunks or whole
gives the same integers.

Agreement with the fake-quantized model
---------------------------------------
The fake-quantized RNNT computes ``v = acc * w_step / out_step`` in float32 (or float64) from
dequantized weights and rounds with ``floor(v + 0.5)``; the integer path rounds the same value
computed through a 31-bit multiplier. The two therefore give the same code except where ``v``
lies within the float model's rounding error of a boundary ``k + 1/2`` (a "tie"; the
multiplier's own error, ``|v| * 2**-31``, is far below float32's). Everything after the gate
codes (cell, ``tanh(c)``, ``h``, the joint's tanh) is exact in both. :func:`compare` measures this
stage by stage, with each stage of the float model fed the integer path's inputs ("local") and
with both running on their own ("free"), and classifies every local disagreement. Measured on
the eight ``examples/`` utterances (621 frames, logits for every frame with each of 29 steps):

* default preset, random weights, float32, 8-bit: 2 local disagreements in 1.87 M encoder gate
  codes, both ties, none in the 0.3 M prediction-network codes, ``enc``, ``pred`` or the 0.5 M
  logits; a tie then propagates through the recurrence of its utterance, so running free 0.15 %
  of the gate codes and 0.5 % of the logits differ (by one code at the requantizations);
  4-bit: 2 local gate ties, whose effect dies out (no ``enc`` or logit differs);
* the same in float64: no code differs at all, free or local;
* tiny preset, float32, 12 models (4 and 8 bits; random dense and 70 % pruned; trained 150
  steps then pruned 40 % and post-training quantized; QAT with 50 % gradual pruning), the
  examples plus 4 synthetic utterances: 3 ties in 8.6 M codes (2 gate codes of the 4-bit QAT
  model, 1 of a random 8-bit one), no unexplained disagreement.

The integer reference is the definition; the float model is the approximation (float32 sums).

Accelerator mapping (issue 4)
-----------------------------
Each ``matvec + requantize`` is one MATVEC on the lanes (``Wq`` as the compressed sparse weight
memory, ``bias, mult, shift`` per row); the LUTs, the cell update, ``sat_8(enc + pred)`` and the
joint tanh are vector-unit operations on the formats above. :meth:`IntRNNT.lstm_step` returns
every intermediate (``acc``, ``a``, gates, ``c``, ``tc``, ``h``) for comparison with the
hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from .frontend import FEATURE_ZERO_POINT, dequantize_features, quantize_features
from .qat import SIGMOID_IN_STEP, TANH_IN_STEP, fake_quant, lut
from .quant import QuantLinear, quantize_multiplier, quantize_weight
from .rnnt import C_MAX, C_MIN, C_STEP, H_STEP, JOINT_STEP, QLSTM, RNNT

__all__ = [
    "IntRefError", "IntRNNT", "IntDecoder", "LSTMStep", "SIGMOID_LUT", "TANH_LUT", "rshr",
    "lut_lookup", "lstm_cell", "requant", "compare", "wer_int_vs_fakequant",
]

#: The sigmoid table, ``int8 (256,)``, index ``a + 128`` (input step 1/16, output 1/128).
SIGMOID_LUT = lut("sigmoid").to(torch.int8)
#: The tanh table, ``int8 (256,)``, index ``a + 128`` (input step 1/32, output 1/128).
TANH_LUT = lut("tanh").to(torch.int8)

_I8 = (-128, 127)
_I16 = (C_MIN, C_MAX)
_I32 = (-(1 << 31), (1 << 31) - 1)


class IntRefError(ValueError):
    """A model the integer reference cannot represent (e.g. unquantized)."""


# -- the primitive operations --------------------------------------------------------------------

def rshr(x: torch.Tensor, s: int) -> torch.Tensor:
    """``(x + (1 << (s-1))) >> s``: right shift by ``s >= 1`` rounding half up (integer tensors)."""
    return (x + (1 << (s - 1))) >> s


def lut_lookup(table: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``table[a + 128]`` for int8 codes ``a`` (any integer dtype, values in [-128, 127]); int64."""
    return table.to(torch.int64)[a.to(torch.int64) + 128]


def requant(acc: torch.Tensor, bias: torch.Tensor, mult: torch.Tensor, shift: torch.Tensor,
            rnd: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`model.quant.requantize` (``acc_bits = 32``, ``out_bits = 8``) without the checks.

    ``sat_8((wrap32(acc + bias) * mult + rnd) >> shift)`` with ``rnd = 1 << (shift - 1)`` (0 for
    ``shift = 0``); all ``int64``. This is the inner loop's form; ``tests/model/test_intref.py``
    checks it against :func:`~model.quant.requantize`.
    """
    if rnd is None:
        rnd = torch.where(shift > 0, torch.ones_like(shift) << (shift - 1).clamp(min=0),
                          torch.zeros_like(shift))
    t = ((acc + bias + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return ((t * mult + rnd) >> shift).clamp_(*_I8)


def lstm_cell(i: torch.Tensor, f: torch.Tensor, g: torch.Tensor, o: torch.Tensor,
              c: torch.Tensor, tanh_lut: torch.Tensor = TANH_LUT
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The LSTM cell update after the LUTs (module docstring), on integer codes.

    Parameters
    ----------
    i, f, g, o : torch.Tensor, integer, shape ``(..., H)``
        Gate codes (step 1/128): ``i, f, o`` in ``[0, 127]``, ``g`` in ``[-128, 127]``.
    c : torch.Tensor, integer, shape ``(..., H)``
        Previous cell state, int16 codes (step ``2**-11``).
    tanh_lut : torch.Tensor
        The tanh table (default :data:`TANH_LUT`).

    Returns
    -------
    c, tc, h : torch.Tensor, int64
        ``c = sat_16(rshr(f c, 7) + rshr(i g, 3))``, ``tc = TANH_LUT[sat_8(rshr(c, 6))]``,
        ``h = sat_8(rshr(o tc, 7))``.
    """
    i, f, g, o, c = (t.to(torch.int64) for t in (i, f, g, o, c))
    c = (rshr(f * c, 7) + rshr(i * g, 3)).clamp_(*_I16)
    tc = lut_lookup(tanh_lut, rshr(c, 6).clamp_(*_I8))
    h = rshr(o * tc, 7).clamp_(*_I8)
    return c, tc, h


class LSTMStep(NamedTuple):
    """Every intermediate of one LSTM step (int64 tensors, shape ``(..., 4H)`` or ``(..., H)``)."""

    acc: torch.Tensor      #: ``(..., 4H)`` accumulators ``Wq z + bias`` (int32 range)
    a: torch.Tensor        #: ``(..., 4H)`` requantized gate inputs (int8)
    i: torch.Tensor        #: ``(..., H)`` gates (int8, step 1/128)
    f: torch.Tensor
    g: torch.Tensor
    o: torch.Tensor
    c: torch.Tensor        #: ``(..., H)`` new cell state (int16)
    tc: torch.Tensor       #: ``(..., H)`` ``TANH_LUT[sat_8(rshr(c, 6))]`` (int8)
    h: torch.Tensor        #: ``(..., H)`` new output (int8)


@dataclass(eq=False)
class _Fast:
    """A matrix prepared for the inner loop: ``int32 (C, R)`` weights and int64 row constants."""

    wt: torch.Tensor
    bias: torch.Tensor
    mult: torch.Tensor
    shift: torch.Tensor
    rnd: torch.Tensor

    @classmethod
    def of(cls, q: QuantLinear) -> "_Fast":
        shift = q.shift.to(torch.int64)
        rnd = torch.where(shift > 0, torch.ones_like(shift) << (shift - 1).clamp(min=0),
                          torch.zeros_like(shift))
        return cls(q.weight.to(torch.int32).t().contiguous(), q.bias.to(torch.int64),
                   q.mult.to(torch.int64), shift, rnd)

    def acc(self, z: torch.Tensor) -> torch.Tensor:
        """``Wq z + bias`` for int8 codes ``z (..., C)``: exact (no overflow, see from_model)."""
        z32 = z.to(torch.int32)
        y = (z32.reshape(-1, z32.shape[-1]) @ self.wt).reshape(*z32.shape[:-1], -1)
        return y.to(torch.int64) + self.bias

    def __call__(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acc = self.acc(z)
        return acc, requant(acc, 0, self.mult, self.shift, self.rnd)


def _int_codes(name: str, x, lo: int, hi: int) -> torch.Tensor:
    """``x`` as an int64 tensor, refusing floats and values outside ``[lo, hi]``."""
    t = torch.as_tensor(x)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer codes, not {t.dtype} (the integer reference "
                         f"takes codes; see model.frontend.features_int8)")
    t = t.to(torch.int64)
    if t.numel() and (int(t.min()) < lo or int(t.max()) > hi):
        raise ValueError(f"{name} holds values outside [{lo}, {hi}] "
                         f"(min {int(t.min())}, max {int(t.max())})")
    return t


# -- the model -----------------------------------------------------------------------------------

class IntRNNT:
    """The RNN-T in integer arithmetic (module docstring); build it with :meth:`from_model`.

    Attributes
    ----------
    hparams : dict
        The float model's constructor arguments.
    matrices : dict[str, model.quant.QuantLinear]
        Per matrix (execution order, names of :meth:`model.rnnt.RNNT.matrices`): weight codes in
        the integer input domain, int32 bias (first layer: feature zero point folded in),
        per-row ``mult`` and ``shift``; ``w_scale`` is ``w_step``, ``in_scale`` the input step
        (None for the first layer, whose columns have two steps), ``out_scale`` the output step
        (None for an LSTM, whose gate blocks have two).
    col_step, out_step : dict[str, torch.Tensor]
        float64 per-column input steps and per-row output steps of each matrix (metadata).
    embedding : torch.Tensor
        ``int8 (V, E)``, step 1/128.
    logit_step : float
        ``s_logit``, the real value of one logit code.
    sigmoid_lut, tanh_lut : torch.Tensor
        :data:`SIGMOID_LUT`, :data:`TANH_LUT`.
    blank : int
    """

    def __init__(self, *, hparams: dict, matrices: dict, col_step: dict, out_step: dict,
                 embedding: torch.Tensor, logit_step: float):
        self.hparams = dict(hparams)
        self.blank = int(hparams["blank"])
        self.matrices = dict(matrices)
        self.col_step = dict(col_step)
        self.out_step = dict(out_step)
        self.embedding = _int_codes("embedding", embedding, *_I8).to(torch.int8)
        self.logit_step = float(logit_step)
        self.sigmoid_lut = SIGMOID_LUT
        self.tanh_lut = TANH_LUT
        L = self.hparams["enc_layers"]
        expect = [f"encoder.{l}" for l in range(L)] + ["enc_proj", "pred_lstm", "pred_proj", "out"]
        if list(self.matrices) != expect:
            raise IntRefError(f"IntRNNT: matrices must be {expect}, not {list(self.matrices)}")
        for name, q in self.matrices.items():
            bound = q.weight.abs().sum(1) * 128 + q.bias.abs()
            if int(bound.max()) >= 1 << 31:
                r = int(bound.argmax())
                raise IntRefError(f"IntRNNT: matrix {name!r} row {r} can overflow the int32 "
                                  f"accumulator (sum |Wq| * 128 + |bias| = {int(bound[r])})")
        self._fast = {n: _Fast.of(q) for n, q in self.matrices.items()}

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    @torch.no_grad()
    def from_model(cls, model: RNNT) -> "IntRNNT":
        """Extract the integer model from a fake-quantized :class:`~model.rnnt.RNNT`.

        The model must have activation quantization on and 4- or 8-bit weights in every matrix
        (a QAT or post-training-quantized checkpoint loads that way; or
        ``model.set_quantization(w_bits=4)``). Its logit observer's current step is taken as
        ``s_logit``.

        Raises
        ------
        IntRefError
            For a float (or partly float) model, naming the float matrices.
        """
        if not isinstance(model, RNNT):
            raise IntRefError(f"IntRNNT.from_model: expected an RNNT, not {type(model).__name__}")
        mats = model.matrices()
        floats = [n for n, m in mats.items() if int(m.w_bits) not in (4, 8)]
        if floats or not bool(model.act_quant):
            what = []
            if floats:
                what.append(f"float weights in {', '.join(floats)}")
            if not bool(model.act_quant):
                what.append("activation quantization off")
            raise IntRefError(
                f"IntRNNT.from_model: the model is not quantized ({'; '.join(what)}); the integer "
                f"reference needs a fake-quantized model: a QAT or post-training-quantized "
                f"checkpoint, model.set_quantization(w_bits=4 or 8), or "
                f"model.qat.quantize_post_training")
        F = model.hparams["feature_dim"]
        logit_step = model.logit_observer.step
        matrices, col_steps, out_steps = {}, {}, {}
        for name, m in mats.items():
            bits = int(m.w_bits)
            w, b = m.effective_weight()                 # what model.rnnt._quantized quantizes
            col = m.col_step.to(torch.float64)
            q, w_step = quantize_weight(w.detach().to(torch.float64) * col, bits)
            bias = torch.round(b.detach().to(torch.float64) / w_step).clamp(*_I32)
            bias = bias.to(torch.int64)                 # == model.qat.fake_quant_bias's codes
            if name == "encoder.0":
                bias = bias + FEATURE_ZERO_POINT * q[:, :F].sum(1)
                if int(bias.abs().max()) > _I32[1]:
                    raise IntRefError("IntRNNT.from_model: the first layer's bias with the "
                                      "feature zero point folded in leaves int32")
            if isinstance(m, QLSTM):
                H = m.hidden_size
                out = torch.full((4 * H,), SIGMOID_IN_STEP, dtype=torch.float64)
                out[2 * H:3 * H] = TANH_IN_STEP
                out_scale = None
            else:
                out_scale = logit_step if name == "out" else JOINT_STEP
                out = torch.full((q.shape[0],), out_scale, dtype=torch.float64)
            ms = [quantize_multiplier(float(s) / float(o)) for s, o in zip(w_step, out)]
            in_scale = None if name == "encoder.0" else float(col[0])
            matrices[name] = QuantLinear(
                q, bias, torch.tensor([x for x, _ in ms]), torch.tensor([s for _, s in ms]),
                bits, in_scale=in_scale, out_scale=out_scale, w_scale=w_step)
            col_steps[name] = col
            out_steps[name] = out
        emb = model.embedding.weight.detach()
        emb_q = torch.round(fake_quant(emb, H_STEP) / H_STEP).to(torch.int64)   # exact codes
        return cls(hparams=model.hparams, matrices=matrices, col_step=col_steps,
                   out_step=out_steps, embedding=emb_q, logit_step=logit_step)

    # -- state ----------------------------------------------------------------------------------

    def init_encoder_state(self, batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero encoder state ``(h int8 (L, [N,] H), c int16 (L, [N,] H))``."""
        L, H = self.hparams["enc_layers"], self.hparams["enc_hidden"]
        shape = (L, H) if batch is None else (L, batch, H)
        return torch.zeros(shape, dtype=torch.int8), torch.zeros(shape, dtype=torch.int16)

    def init_predict_state(self, batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero prediction state ``(h int8 (1, [N,] P), c int16 (1, [N,] P))``."""
        P = self.hparams["pred_hidden"]
        shape = (1, P) if batch is None else (1, batch, P)
        return torch.zeros(shape, dtype=torch.int8), torch.zeros(shape, dtype=torch.int16)

    # -- stages -----------------------------------------------------------------------------------

    def lstm_step(self, name: str, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> LSTMStep:
        """One step of LSTM matrix ``name`` (``"encoder.l"`` or ``"pred_lstm"``).

        Parameters
        ----------
        x : ``(..., I)`` int8 input codes (raw feature codes for ``encoder.0``)
        h : ``(..., H)`` int8;  c : ``(..., H)`` int16 (integer dtypes, unchecked)

        Returns
        -------
        LSTMStep
            Every intermediate (int64).
        """
        acc, a = self._fast[name](torch.cat([x.to(torch.int64), h.to(torch.int64)], -1))
        H = a.shape[-1] // 4
        sig, tanh = self.sigmoid_lut, self.tanh_lut
        i = lut_lookup(sig, a[..., :H])
        f = lut_lookup(sig, a[..., H:2 * H])
        g = lut_lookup(tanh, a[..., 2 * H:3 * H])
        o = lut_lookup(sig, a[..., 3 * H:])
        c, tc, h = lstm_cell(i, f, g, o, c, tanh)
        return LSTMStep(acc, a, i, f, g, o, c, tc, h)

    def project(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``sat_8(requant(Wq x + bias))`` of matrix ``name`` on int8 codes ``x (..., C)``."""
        return self._fast[name](x)[1]

    def _encoder_step(self, x, h, c):
        hs, cs = [], []
        for l in range(self.hparams["enc_layers"]):
            st = self.lstm_step(f"encoder.{l}", x, h[l], c[l])
            hs.append(st.h)
            cs.append(st.c)
            x = st.h
        enc = self.project("enc_proj", x)
        return enc, torch.stack(hs), torch.stack(cs)

    def _check_features(self, feats, dims):
        F = self.hparams["feature_dim"]
        x = _int_codes("features", feats, *_I8)
        if x.dim() not in dims or x.shape[-1] != F:
            names = {1: "(F,)", 2: "(T, F)" if 3 in dims or dims == (2,) else "(N, F)",
                     3: "(N, T, F)"}
            raise ValueError(f"features must have shape {' or '.join(names[d] for d in dims)} "
                             f"with F = {F}, not {tuple(x.shape)}")
        return x

    def _state(self, state, batch, init):
        if state is None:
            return init(batch)
        h, c = state
        return _int_codes("state h", h, *_I8), _int_codes("state c", c, *_I16)

    def encoder_step(self, x_q, state=None):
        """One encoder frame.

        Parameters
        ----------
        x_q : int8 codes, shape ``(F,)`` or ``(N, F)``
            :func:`model.frontend.features_int8` codes of one frame.
        state : (h (L, [N,] H), c (L, [N,] H)), optional
            Zeros by default.

        Returns
        -------
        enc_q : torch.Tensor, int8, shape ``([N,] J)`` (step 1/32)
        state : (h int8, c int16)
        """
        x = self._check_features(x_q, (1, 2))
        h, c = self._state(state, None if x.dim() == 1 else x.shape[0], self.init_encoder_state)
        enc, h, c = self._encoder_step(x, h, c)
        return enc.to(torch.int8), (h.to(torch.int8), c.to(torch.int16))

    def transcribe(self, feats_q, state=None, *, lengths=None, return_state: bool = False):
        """Encode a sequence frame by frame (a loop of :meth:`encoder_step`).

        Parameters
        ----------
        feats_q : int8 codes, shape ``(T, F)`` or ``(N, T, F)``
        state : (h (L, [N,] H), c (L, [N,] H)), optional
            State before the first frame (zeros by default).
        lengths : ``(N,)``, optional
            Valid frames per utterance of a padded batch: the returned state is each one's
            state after its own last frame (the outputs past it are computed but meaningless).
        return_state : bool
            Also return the state.

        Returns
        -------
        enc_q : torch.Tensor, int8, shape ``([N,] T, J)``
        state : (h int8 (L, [N,] H), c int16 (L, [N,] H)), only with ``return_state``
        """
        x = self._check_features(feats_q, (2, 3))
        batched = x.dim() == 3
        if not batched:
            x = x[None]
            if lengths is not None:
                raise ValueError("transcribe: lengths needs batched features (N, T, F)")
        N, T, _ = x.shape
        if state is not None and not batched:
            state = (state[0][:, None], state[1][:, None])
        h, c = self._state(state, N, self.init_encoder_state)
        h, c = h.to(torch.int64), c.to(torch.int64)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.int64)
            if lengths.shape != (N,) or bool((lengths < 0).any()) or bool((lengths > T).any()):
                raise ValueError(f"transcribe: lengths must be (N,) = ({N},) in [0, {T}]")
        J = self.hparams["joint_dim"]
        enc = torch.empty(N, T, J, dtype=torch.int8)
        for t in range(T):
            e, h1, c1 = self._encoder_step(x[:, t], h, c)
            enc[:, t] = e
            if lengths is None:
                h, c = h1, c1
            else:
                keep = (lengths > t)[None, :, None]
                h, c = torch.where(keep, h1, h), torch.where(keep, c1, c)
        st = (h.to(torch.int8), c.to(torch.int16))
        if not batched:
            enc, st = enc[0], (st[0][:, 0], st[1][:, 0])
        return (enc, st) if return_state else enc

    def predict_step(self, token, state=None):
        """One prediction-network step.

        Parameters
        ----------
        token : int or int64 tensor ``(N,)``
            The previous label (the blank at the start of a hypothesis).
        state : (h (1, [N,] P), c (1, [N,] P)), optional

        Returns
        -------
        pred_q : torch.Tensor, int8, shape ``([N,] J)`` (step 1/32)
        state : (h int8, c int16)
        """
        tok = _int_codes("token", token, 0, self.hparams["vocab_size"] - 1)
        if tok.dim() > 1:
            raise ValueError(f"predict_step: token must be a scalar or (N,), not "
                             f"{tuple(tok.shape)}")
        h, c = self._state(state, None if tok.dim() == 0 else tok.shape[0],
                           self.init_predict_state)
        pred, h, c = self._predict_step(tok, h[0], c[0])
        return pred.to(torch.int8), (h[None].to(torch.int8), c[None].to(torch.int16))

    def _predict_step(self, tok, h, c):
        e = self.embedding.to(torch.int64)[tok]
        st = self.lstm_step("pred_lstm", e, h, c)
        return self.project("pred_proj", st.h), st.h, st.c

    def join(self, enc_q, pred_q) -> torch.Tensor:
        """Joint network on codes: ``enc_q (..., J)`` and ``pred_q (..., J)`` broadcast.

        Returns
        -------
        logits_q : torch.Tensor, int8, shape ``(..., V)``
            Real logits are ``logits_q * logit_step``.
        """
        e = _int_codes("enc_q", enc_q, *_I8)
        p = _int_codes("pred_q", pred_q, *_I8)
        return self._join(e, p).to(torch.int8)

    def _join(self, e, p):
        s = (e + p).clamp_(*_I8)
        return self.project("out", lut_lookup(self.tanh_lut, s))

    def dequantize_logits(self, logits_q: torch.Tensor) -> torch.Tensor:
        """``logits_q * logit_step`` in float32, as the fake-quantized model returns them."""
        return logits_q.to(torch.float32).mul_(self.logit_step)

    def decoder(self) -> "IntDecoder":
        """The adapter that :mod:`model.decode`'s searches run on (:class:`IntDecoder`)."""
        return IntDecoder(self)

    def __repr__(self) -> str:
        bits = {n: q.w_bits for n, q in self.matrices.items()}
        return f"IntRNNT({self.hparams}, w_bits={bits}, logit_step={self.logit_step:.6g})"


class IntDecoder:
    """:class:`IntRNNT` behind the stage interface of :class:`~model.rnnt.RNNT` that
    :mod:`model.decode` uses, so ``greedy_batch``, ``greedy_ids``, ``beam_search`` and
    ``beam_search_hyps`` run unchanged on the integer reference.

    ``transcribe`` takes int8 feature codes (or float features on the int8 grid, converted
    exactly by :func:`model.frontend.quantize_features`) and returns int8 ``enc`` codes;
    ``predict`` returns int8 ``pred`` codes and the int8/int16 state with the float model's
    ``(1, N, P)`` layout; ``join`` returns the dequantized logits (float32), of which the
    searches take ``log_softmax``: the host's part of the contract.
    """

    def __init__(self, int_model: IntRNNT):
        self.int_model = int_model
        self.blank = int_model.blank

    def _codes(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.dtype.is_floating_point:
            q = quantize_features(feats)
            if not torch.equal(dequantize_features(q).to(feats.dtype), feats):
                raise ValueError("IntDecoder: float features are not on the int8 feature grid; "
                                 "pass model.frontend.features_int8 codes")
            return q
        return feats

    def transcribe(self, feats, lengths=None, state=None):
        x = self._codes(feats)
        N, T = x.shape[:2]
        if lengths is None:
            lengths = torch.full((N,), T, dtype=torch.int64)
        enc, st = self.int_model.transcribe(x, state, lengths=lengths, return_state=True)
        return enc, lengths, st

    def predict(self, tokens, state=None):
        m = self.int_model
        tokens = _int_codes("tokens", tokens, 0, m.hparams["vocab_size"] - 1)
        N, U = tokens.shape
        h, c = m._state(state, N, m.init_predict_state)
        h, c = h[0], c[0]
        out = []
        for u in range(U):
            p, h, c = m._predict_step(tokens[:, u], h, c)
            out.append(p)
        return (torch.stack(out, 1).to(torch.int8),
                (h[None].to(torch.int8), c[None].to(torch.int16)))

    def join(self, enc, pred):
        m = self.int_model
        return m.dequantize_logits(m._join(enc.to(torch.int64), pred.to(torch.int64)))


# -- agreement with the fake-quantized model -------------------------------------------------------

def _fq_codes(v: torch.Tensor, step) -> torch.Tensor:
    """Codes of a fake-quantized value (exact: ``v`` is a code times ``step``)."""
    return torch.round(v.to(torch.float64) / step).to(torch.int64)


class _Tally:
    """Per-stage counts for :func:`compare`."""

    def __init__(self):
        self.stages = {}

    def add(self, stage, mode, ref, got, explained=None):
        s = self.stages.setdefault(stage, dict(values=0, free=0, local=0, unexplained=0,
                                               max_diff=0))
        diff = (ref.to(torch.int64) - got.to(torch.int64)).abs()
        bad = diff > 0
        if mode == "free":
            s["values"] += ref.numel()
        else:
            if explained is not None:
                s["unexplained"] += int((bad & ~explained).sum())
            else:
                s["unexplained"] += int(bad.sum())
        s[mode] += int(bad.sum())
        if bad.any():
            s["max_diff"] = max(s["max_diff"], int(diff.max()))
        return bad


def _near_tie(int_model, name, acc, z_abs_terms, dtype, got_fq, got_int):
    """Which disagreements of a requantization lie within float error of a rounding boundary.

    ``acc``: exact integer accumulators; ``z_abs_terms``: ``sum_c |Wq z| + |bias|`` as the
    float model sees them. True where the codes differ by one and the exact value
    ``acc * w_step / out_step`` lies within the bound of the float model's error of
    ``k + 1/2``, ``k = min(codes)``.
    """
    q = int_model.matrices[name]
    scale = q.w_scale / int_model.out_step[name]
    v = acc.to(torch.float64) * scale
    u = torch.finfo(dtype).eps / 2
    C = q.cols
    tol = ((C + 8) * u * z_abs_terms.to(torch.float64) * scale + 8 * u * v.abs()
           + v.abs() * 2.0 ** -30)
    k = torch.minimum(got_fq, got_int).to(torch.float64)
    return ((got_fq - got_int).abs() == 1) & ((v - (k + 0.5)).abs() <= tol)


@torch.no_grad()
def compare(model: RNNT, int_model: IntRNNT, feats_q: torch.Tensor,
            tokens: torch.Tensor | None = None) -> dict:
    """Stage-by-stage agreement of the fake-quantized model and the integer reference.

    Both run on the same int8 features (the float model on their exact dequantization) and
    the same token sequence, frame by frame and step by step, in two modes:

    * **free**: each path runs on its own (what decoding sees): a difference, once made,
      propagates through the recurrence;
    * **local**: every stage of the float model is fed the integer path's inputs and state,
      so a count there is a disagreement made by that stage itself. A local disagreement is
      *explained* when it is a tie: for a requantization (gates, ``enc``, ``pred``, logits) the
      codes differ by one and the exact value lies within the float model's rounding error
      (a bound from its dtype and the sum of absolute terms) of the boundary between them; for
      ``c`` and ``h`` when a gate of the same unit differed in that step.

    Parameters
    ----------
    model : model.rnnt.RNNT
        Fake-quantized (run in evaluation mode; float32 or float64).
    int_model : IntRNNT
        Usually ``IntRNNT.from_model(model)``.
    feats_q : torch.Tensor, int8, shape ``(T, F)``
    tokens : torch.Tensor, int64, shape ``(U,)``, optional
        Labels fed to the prediction network after the blank (default every label once).

    Returns
    -------
    dict
        ``{"frames": T, "steps": U + 1, "dtype": str, "stages": {stage: {"values", "free",
        "local", "unexplained", "max_diff"}}}`` with the stages ``encoder.l.gates``,
        ``encoder.l.c``, ``encoder.l.h`` (every layer), ``enc``, ``enc_whole`` (the model's
        whole-sequence :meth:`~model.rnnt.RNNT.transcribe`, free mode only),
        ``pred_lstm.gates``, ``pred_lstm.c``, ``pred_lstm.h``, ``pred``, ``logits`` (every
        frame with every step). ``values`` counts the compared codes, ``free`` / ``local``
        the differing ones, ``unexplained`` the local ones that are not ties, ``max_diff`` the
        largest difference in codes.
    """
    if model.logit_observer.step != int_model.logit_step:
        raise IntRefError(f"compare: the model's logit step {model.logit_observer.step} is not "
                          f"the integer model's {int_model.logit_step} (observer changed?)")
    was_training = model.training
    model.eval()
    try:
        return _compare(model, int_model, feats_q, tokens)
    finally:
        model.train(was_training)


def _fq_lstm(layer: QLSTM, x, h, c):
    """One fake-quantized LSTM step of ``layer`` on ``x (N, I)``, ``h, c (N, H)`` floats.

    Returns the gate codes the layer computes (the same ``addmm`` calls as its forward pass)
    and its new ``h, c``.
    """
    w, b = layer.weight_bias()
    I = layer.input_size
    xin = x
    if layer.quantize_input:
        xin = fake_quant(x, layer.in_step, *layer.in_range)
    a = torch.addmm(torch.addmm(b, xin, w[:, :I].t()), h, w[:, I:].t())
    H = layer.hidden_size
    inv = torch.full((4 * H,), 1 / SIGMOID_IN_STEP, dtype=a.dtype)
    inv[2 * H:3 * H] = 1 / TANH_IN_STEP
    codes = a.mul(inv).add_(0.5).floor_().clamp_(*_I8).to(torch.int64)
    hs, (h1, c1) = layer(x[:, None], (h, c), None, True)
    return codes, h1, c1


def _compare_projection(tally, key, model, int_model, name, x_int, x_fq, dt):
    """Tally projection ``name`` (output step 1/32) of the integer input ``x_int`` against the
    float model's, run free on its own input ``x_fq`` and locally on ``x_int``; returns the
    integer and the free-running float codes."""
    layer = getattr(model, name)
    got = int_model.project(name, x_int)
    free = _fq_codes(fake_quant(layer(x_fq), JOINT_STEP), JOINT_STEP)
    local = _fq_codes(fake_quant(layer(x_int.to(dt) * H_STEP), JOINT_STEP), JOINT_STEP)
    tally.add(key, "free", got, free)
    acc = int_model._fast[name].acc(x_int)
    tally.add(key, "local", got, local,
              _near_tie(int_model, name, acc, _abs_terms(int_model, name, x_int), dt, local, got))
    return got, free


def _abs_terms(int_model, name, z_model_codes):
    """``sum_c |Wq[r, c]| |z[c]| + |bias_fq[r]|`` with ``z`` as the float model's codes."""
    q = int_model.matrices[name]
    bias = q.bias
    if name == "encoder.0":
        bias = bias - FEATURE_ZERO_POINT * q.weight[:, :int_model.hparams["feature_dim"]].sum(1)
    return z_model_codes.abs().to(torch.float64) @ q.weight.abs().t().to(torch.float64) + bias.abs()


def _compare(model, int_model, feats_q, tokens):
    m, im = model, int_model
    dt = next(m.parameters()).dtype
    x_q = im._check_features(feats_q, (2,))
    T = x_q.shape[0]
    L = m.hparams["enc_layers"]
    feats = dequantize_features(x_q.to(torch.int8)).to(dt)
    tally = _Tally()
    H = m.hparams["enc_hidden"]

    # -- encoder, frame by frame --------------------------------------------------------------
    hi, ci = im.init_encoder_state(1)
    hi, ci = hi.to(torch.int64), ci.to(torch.int64)
    hf = [torch.zeros(1, H, dtype=dt) for _ in range(L)]
    cf = [torch.zeros(1, H, dtype=dt) for _ in range(L)]
    enc_i, enc_f = [], []
    for t in range(T):
        xi = x_q[t][None]
        xf = feats[t][None]
        new_h, new_c = [], []
        for l in range(L):
            name, layer = f"encoder.{l}", m.encoder[l]
            st = im.lstm_step(name, xi, hi[l], ci[l])
            # free: the float model on its own state and input
            gf, hf[l], cf[l] = _fq_lstm(layer, xf, hf[l], cf[l])
            tally.add(f"{name}.gates", "free", st.a, gf)
            tally.add(f"{name}.c", "free", st.c, _fq_codes(cf[l], C_STEP))
            tally.add(f"{name}.h", "free", st.h, _fq_codes(hf[l], H_STEP))
            # local: the float model on the integer path's input and state
            xin_f = (dequantize_features(xi.to(torch.int8)).to(dt) if l == 0
                     else (xi.to(dt) * H_STEP))
            gl, hl, cl = _fq_lstm(layer, xin_f, hi[l].to(dt) * H_STEP, ci[l].to(dt) * C_STEP)
            zc = torch.cat([xi + (FEATURE_ZERO_POINT if l == 0 else 0), hi[l]], -1)
            bad = gl != st.a
            expl = _near_tie(im, name, st.acc, _abs_terms(im, name, zc), dt, gl, st.a)
            tally.add(f"{name}.gates", "local", st.a, gl, expl)
            unit_bad = bad.reshape(1, 4, -1).any(1)
            cbad = tally.add(f"{name}.c", "local", st.c, _fq_codes(cl, C_STEP), unit_bad)
            tally.add(f"{name}.h", "local", st.h, _fq_codes(hl, H_STEP), unit_bad | cbad)
            new_h.append(st.h)
            new_c.append(st.c)
            xi, xf = st.h, hf[l]
        hi, ci = torch.stack(new_h), torch.stack(new_c)
        # projection
        ei, ef = _compare_projection(tally, "enc", m, im, "enc_proj", xi, xf, dt)
        enc_i.append(ei[0])
        enc_f.append(ef[0])
    enc_i, enc_f = torch.stack(enc_i), torch.stack(enc_f)
    whole, _, _ = m.transcribe(feats[None])
    tally.add("enc_whole", "free", enc_i, _fq_codes(whole[0], JOINT_STEP))

    # -- prediction network, step by step ------------------------------------------------------
    V = m.hparams["vocab_size"]
    if tokens is None:
        tokens = torch.tensor([k for k in range(V) if k != m.blank], dtype=torch.int64)
    seq = torch.cat([torch.tensor([m.blank]), torch.as_tensor(tokens, dtype=torch.int64)])
    P = m.hparams["pred_hidden"]
    hi, ci = torch.zeros(1, P, dtype=torch.int64), torch.zeros(1, P, dtype=torch.int64)
    hf, cf = torch.zeros(1, P, dtype=dt), torch.zeros(1, P, dtype=dt)
    pred_i, pred_f = [], []
    layer = m.pred_lstm
    for u in range(seq.shape[0]):
        tok = seq[u:u + 1]
        e_i = im.embedding.to(torch.int64)[tok]
        e_f = fake_quant(m.embedding(tok), H_STEP)
        tally.add("embedding", "free", e_i, _fq_codes(e_f, H_STEP))
        tally.add("embedding", "local", e_i, _fq_codes(e_f, H_STEP))
        st = im.lstm_step("pred_lstm", e_i, hi, ci)
        gf, hf, cf = _fq_lstm(layer, e_f, hf, cf)
        tally.add("pred_lstm.gates", "free", st.a, gf)
        tally.add("pred_lstm.c", "free", st.c, _fq_codes(cf, C_STEP))
        tally.add("pred_lstm.h", "free", st.h, _fq_codes(hf, H_STEP))
        gl, hl, cl = _fq_lstm(layer, e_i.to(dt) * H_STEP, hi.to(dt) * H_STEP, ci.to(dt) * C_STEP)
        zc = torch.cat([e_i, hi], -1)
        expl = _near_tie(im, "pred_lstm", st.acc, _abs_terms(im, "pred_lstm", zc), dt, gl, st.a)
        tally.add("pred_lstm.gates", "local", st.a, gl, expl)
        unit_bad = (gl != st.a).reshape(1, 4, -1).any(1)
        cbad = tally.add("pred_lstm.c", "local", st.c, _fq_codes(cl, C_STEP), unit_bad)
        tally.add("pred_lstm.h", "local", st.h, _fq_codes(hl, H_STEP), unit_bad | cbad)
        hi, ci = st.h, st.c
        pi, pf = _compare_projection(tally, "pred", m, im, "pred_proj", hi, hf, dt)
        pred_i.append(pi[0])
        pred_f.append(pf[0])
    pred_i, pred_f = torch.stack(pred_i), torch.stack(pred_f)

    # -- joint: every frame with every step ----------------------------------------------------
    step = im.logit_step
    li = im._join(enc_i[:, None], pred_i[None])
    lf = _fq_codes(m.join(enc_f[:, None].to(dt) * JOINT_STEP, pred_f[None].to(dt) * JOINT_STEP),
                   step)
    ll = _fq_codes(m.join(enc_i[:, None].to(dt) * JOINT_STEP, pred_i[None].to(dt) * JOINT_STEP),
                   step)
    tally.add("logits", "free", li, lf)
    j = lut_lookup(TANH_LUT, (enc_i[:, None] + pred_i[None]).clamp(*_I8))
    acc = im._fast["out"].acc(j)
    tally.add("logits", "local", li, ll,
              _near_tie(im, "out", acc, _abs_terms(im, "out", j), dt, ll, li))
    return dict(frames=T, steps=int(seq.shape[0]), dtype=str(dt).replace("torch.", ""),
                stages=tally.stages)


# -- WER of both ---------------------------------------------------------------------------------

def wer_int_vs_fakequant(ckpt_path, manifest, limit: int | None = None, *, beam: int = 1,
                         progress: bool = False) -> dict:
    """WER of the fake-quantized model and of the integer reference on a manifest.

    Both decode the same int8 features (:func:`model.frontend.features_int8`) with the same
    search (:func:`model.decode.greedy_batch` for ``beam = 1``, else
    :func:`model.decode.beam_search`); the float model as loaded (float32), the integer one
    through :class:`IntDecoder`.

    Parameters
    ----------
    ckpt_path : str or Path
        A quantized checkpoint.
    manifest : str or Path
        A corpus split (JSONL), e.g. ``build/corpus/main/test.jsonl``.
    limit : int, optional
        Only the first ``limit`` utterances.
    beam : int
    progress : bool

    Returns
    -------
    dict
        ``fake_quant`` and ``int``: :func:`model.evaluate.evaluate` reports (``all``,
        ``seen_templates``, ``held_out_templates``, ``utterances``...); ``wer_delta``
        (int minus fake-quant, absolute, as a fraction); ``identical`` (utterances with the
        same transcript); ``utterances``; ``checkpoint``, ``manifest``, ``beam``.
    """
    from tqdm import tqdm

    from .audio import load_audio
    from .checkpoint import load
    from .corpus import read_manifest
    from .decode import beam_search, greedy_batch
    from .evaluate import evaluate
    from .frontend import features_int8

    model = load(ckpt_path).model.eval()
    im = IntRNNT.from_model(model)
    dec = im.decoder()
    entries = read_manifest(manifest)
    if limit is not None:
        entries = entries[:limit]
    hyps = {}
    for n, e in enumerate(tqdm(entries, desc="int vs fake-quant", unit="utt",
                               disable=not progress)):
        q = features_int8(torch.from_numpy(load_audio(e["audio"])))
        f = dequantize_features(q)
        if beam == 1:
            a = greedy_batch(model, f[None])[0]
            b = greedy_batch(dec, q[None])[0]
        else:
            a = beam_search(model, f, beam=beam, nbest=1)[0][0]
            b = beam_search(dec, q, beam=beam, nbest=1)[0][0]
        hyps[n] = (a, b)
    index = {id(e): n for n, e in enumerate(entries)}
    fq = evaluate(entries, lambda e: hyps[index[id(e)]][0], progress=False, desc="fake-quant")
    it = evaluate(entries, lambda e: hyps[index[id(e)]][1], progress=False, desc="int")
    return dict(fake_quant=fq, int=it, wer_delta=it["all"]["wer"] - fq["all"]["wer"],
                identical=sum(a == b for a, b in hyps.values()), utterances=len(entries),
                checkpoint=str(ckpt_path), manifest=str(manifest), beam=beam)
