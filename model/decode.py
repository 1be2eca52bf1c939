"""Decoding an RNN-T: greedy (batched) and beam search with a ranked n-best list.

Dimension letters
-----------------
``N`` utterances, ``T`` encoder frames, ``F`` features, ``J`` joint width, ``V`` vocabulary.

Both decoders run the model's three stages (:meth:`~model.rnnt.RNNT.transcribe`,
:meth:`~model.rnnt.RNNT.predict`, :meth:`~model.rnnt.RNNT.join`) in whatever mode the model is
in (float or fake-quantized), and emit at most ``max_symbols`` labels per frame
(:data:`MAX_SYMBOLS`; at the 30 ms frame rate even fast speech needs fewer than 1 character per
frame on average). After ``max_symbols`` labels a frame is closed with a blank, as if the
blank had been chosen.

Scores
------
A hypothesis' score is the log-likelihood of one alignment: the sum, over its path through the
``T x (U+1)`` lattice, of ``log_softmax(join(enc[t], pred[u]))`` of every symbol taken, one
label per emission and one blank per frame. Beam search keeps, for each label sequence, only its
best-scoring alignment (it does not sum alignments), so the n-best texts are distinct and each
score is exactly the log-likelihood of a path the model can be asked about.

Beam search
-----------
Time-synchronous, in the style of ESPnet's / k2's "modified" beam search but allowing up to
``max_symbols`` labels per frame. For each frame ``t`` the hypotheses ``A`` (frame not yet
closed) start as the beam; in each of up to ``max_symbols + 1`` rounds, every hypothesis in
``A`` is extended by the blank (closing the frame: into ``B``) and by each label (staying in
``A``; not in the last round); the pool of ``B`` and all extensions is cut to the ``beam``
best (label sequences already in ``B`` keep their best score); the survivors in ``A`` go on.
After the frame, ``B`` is the beam. Ties are broken in favour of earlier pool entries: ``B``,
then each hypothesis' blank, then its labels in index order, which makes ``beam=1`` exactly
the greedy decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .text import decode as decode_ids

__all__ = ["MAX_SYMBOLS", "greedy", "greedy_batch", "greedy_ids", "beam_search",
           "beam_search_hyps", "beam_step", "final_beam", "Hypothesis"]

#: Default maximum labels emitted per encoder frame.
MAX_SYMBOLS = 4


def _check(max_symbols):
    if not isinstance(max_symbols, int) or max_symbols < 1:
        raise ValueError(f"max_symbols must be a positive integer, not {max_symbols!r}")


@torch.no_grad()
def greedy_ids(model, feats: torch.Tensor, lengths: torch.Tensor | None = None, *,
               max_symbols: int = MAX_SYMBOLS) -> list[list[int]]:
    """Batched greedy decoding to label ids.

    Parameters
    ----------
    model : model.rnnt.RNNT
    feats : torch.Tensor, shape ``(N, T, F)``
        Zero-padded features.
    lengths : torch.Tensor, shape ``(N,)``, optional
        Valid frames per utterance (default ``T``).
    max_symbols : int
        Labels per frame at most.

    Returns
    -------
    list of list of int
        ``N`` label sequences (no blanks).
    """
    _check(max_symbols)
    if feats.dim() != 3:
        raise ValueError(f"greedy: feats must have shape (N, T, F), not {tuple(feats.shape)}")
    enc, lengths, _ = model.transcribe(feats, lengths)
    N, T, _ = enc.shape
    blank = model.blank
    pred, (h, c) = model.predict(torch.full((N, 1), blank, dtype=torch.int64))
    pred = pred[:, 0].clone()
    h, c = h.clone(), c.clone()
    out: list[list[int]] = [[] for _ in range(N)]
    for t in range(T):
        active = lengths > t
        for _ in range(max_symbols):
            if not bool(active.any()):
                break
            lp = torch.log_softmax(model.join(enc[:, t], pred), -1)
            k = lp.argmax(-1)
            emit = active & (k != blank)
            if not bool(emit.any()):
                break
            idx = emit.nonzero()[:, 0]
            p, (h1, c1) = model.predict(k[idx, None], (h[:, idx], c[:, idx]))
            pred[idx] = p[:, 0]
            h[:, idx] = h1
            c[:, idx] = c1
            for n in idx.tolist():
                out[n].append(int(k[n]))
            active = emit
    return out


def greedy_batch(model, feats: torch.Tensor, lengths: torch.Tensor | None = None, *,
                 max_symbols: int = MAX_SYMBOLS) -> list[str]:
    """Batched greedy decoding to texts (see :func:`greedy_ids`)."""
    return [decode_ids(ids) for ids in greedy_ids(model, feats, lengths, max_symbols=max_symbols)]


def greedy(model, feats: torch.Tensor, *, max_symbols: int = MAX_SYMBOLS) -> str:
    """Greedy transcript of one utterance, ``feats (T, F)``."""
    if feats.dim() != 2:
        raise ValueError(f"greedy: feats must have shape (T, F), not {tuple(feats.shape)}")
    return greedy_batch(model, feats[None], max_symbols=max_symbols)[0]


@dataclass(eq=False)
class Hypothesis:
    """One beam entry.

    Attributes
    ----------
    tokens : tuple of int
        Labels so far.
    score : float
        Log-likelihood of :attr:`path` (float64 sum).
    pred : torch.Tensor, shape ``(J,)``
        Prediction network output after ``tokens``.
    state : (h (1, 1, P), c (1, 1, P))
    link : tuple or None
        The path as a linked list ``(previous link, t, symbol)``; see :meth:`path`.
    """

    tokens: tuple
    score: float
    pred: torch.Tensor
    state: tuple
    link: tuple | None = None

    def path(self) -> list[tuple[int, int]]:
        """The alignment: ``(t, symbol)`` in order, a blank closing every frame."""
        out, node = [], self.link
        while node is not None:
            node, t, sym = node
            out.append((t, sym))
        return out[::-1]

    @property
    def text(self) -> str:
        return decode_ids(self.tokens)


def beam_step(A, B, lp, *, beam: int, blank: int, extend: bool, close, fusion=None):
    """One expansion round of the beam search (shared by every implementation of it).

    ``A``: the hypotheses still open in this frame, ``lp[a]`` the log-probabilities (a list per
    symbol) of ``A[a]``'s next symbol; ``B``: the hypotheses already closed by a blank. The
    ``beam`` best candidates are kept: a hypothesis of ``B`` as it is, a blank closing ``A[a]``
    (built by ``close(hyp, score)``, each token sequence kept once) or, with ``extend``, a
    non-blank symbol ``k`` extending ``A[a]``. Ties keep candidate order (a stable sort).

    With ``fusion`` (a :class:`model.lm.Fusion`) its language model's terms are added to the
    labels' log-probabilities first (``lp`` is changed in place).

    Returns ``(B, grow)``: the closed hypotheses, and ``(score, hyp, k)`` for every extension
    the caller must run the prediction network for.
    """
    if fusion is not None:
        fusion.adjust(lp, A, blank)
    pool = [(h.score, 0, h, None) for h in B]               # (score, kind, hyp, label)
    for a, h in enumerate(A):
        pool.append((h.score + lp[a][blank], 1, h, blank))
        if extend:
            pool.extend((h.score + lp[a][k], 2, h, k) for k in range(len(lp[a])) if k != blank)
    pool.sort(key=lambda e: -e[0])
    closed, grow, seen = [], [], set()
    for score, kind, h, k in pool:
        if len(closed) + len(grow) == beam:
            break
        if kind == 2:
            grow.append((score, h, k))
            continue
        if h.tokens in seen:
            continue
        seen.add(h.tokens)
        closed.append(h if kind == 0 else close(h, score))
    return closed, grow


def final_beam(hyps, fusion=None) -> list:
    """The search's last beam, best first (with ``fusion``, after its end-of-sentence term)."""
    if fusion is not None:
        return fusion.finish(hyps)
    return sorted(hyps, key=lambda h: -h.score)


@torch.no_grad()
def beam_search_hyps(model, feats: torch.Tensor, *, beam: int = 4,
                     max_symbols: int = MAX_SYMBOLS, fusion=None) -> list[Hypothesis]:
    """Beam search over one utterance ``feats (T, F)``; the final beam, best first.

    ``fusion``: a :class:`model.lm.Fusion` whose language model re-scores the labels (shallow
    fusion); the scores then include its terms."""
    if not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be a positive integer, not {beam!r}")
    _check(max_symbols)
    if feats.dim() != 2:
        raise ValueError(f"beam_search: feats must have shape (T, F), not {tuple(feats.shape)}")
    blank = model.blank
    enc, _, _ = model.transcribe(feats[None])
    enc = enc[0]
    p0, st0 = model.predict(torch.full((1, 1), blank, dtype=torch.int64))
    beam_hyps = [Hypothesis((), 0.0, p0[0, 0], st0)]
    for t in range(enc.shape[0]):
        A, B = beam_hyps, []
        for r in range(max_symbols + 1):
            if not A:
                break
            lp = torch.log_softmax(model.join(enc[t][None], torch.stack([h.pred for h in A])), -1)
            B, grow = beam_step(A, B, lp.to(torch.float64).tolist(), beam=beam, blank=blank,
                                extend=r < max_symbols, fusion=fusion,
                                close=lambda h, score, t=t: Hypothesis(
                                    h.tokens, score, h.pred, h.state, (h.link, t, blank)))
            if grow:
                toks = torch.tensor([[k] for _, _, k in grow], dtype=torch.int64)
                hh = torch.cat([h.state[0] for _, h, _ in grow], 1)
                cc = torch.cat([h.state[1] for _, h, _ in grow], 1)
                p, (h1, c1) = model.predict(toks, (hh, cc))
                A = [Hypothesis(h.tokens + (k,), score, p[i, 0], (h1[:, i:i + 1], c1[:, i:i + 1]),
                                (h.link, t, k))
                     for i, (score, h, k) in enumerate(grow)]
            else:
                A = []
        beam_hyps = B
    return final_beam(beam_hyps, fusion)


def beam_search(model, feats: torch.Tensor, *, beam: int = 4, nbest: int = 4,
                max_symbols: int = MAX_SYMBOLS, fusion=None) -> list[tuple[str, float]]:
    """Beam search over one utterance.

    Parameters
    ----------
    model : model.rnnt.RNNT
    feats : torch.Tensor, shape ``(T, F)``
    beam : int
        Hypotheses kept per frame.
    nbest : int
        Hypotheses returned, ``1 <= nbest <= beam``.
    max_symbols : int
        Labels per frame at most.
    fusion : model.lm.Fusion, optional
        A domain language model fused into the search's scores (shallow fusion).

    Returns
    -------
    list of (str, float)
        Up to ``nbest`` distinct texts with their log-likelihood scores (with ``fusion``, plus
        its terms), best first.
    """
    if not isinstance(nbest, int) or not 1 <= nbest <= max(1, beam if isinstance(beam, int) else 1):
        raise ValueError(f"nbest must be between 1 and beam ({beam}), not {nbest!r}")
    hyps = beam_search_hyps(model, feats, beam=beam, max_symbols=max_symbols, fusion=fusion)
    return [(h.text, h.score) for h in hyps[:nbest]]
