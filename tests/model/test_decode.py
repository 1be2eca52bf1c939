"""Tests of model/decode.py against brute force and the model's own lattice."""

from __future__ import annotations

import pytest
import torch

from model.decode import beam_search, beam_search_hyps, greedy, greedy_batch, greedy_ids
from model.rnnt import rnnt
from model.text import BLANK, decode


def _model(w_bits=None, seed=0, sharpen=1.0):
    torch.manual_seed(seed)
    m = rnnt(preset="tiny")
    with torch.no_grad():
        m.out.weight.mul_(sharpen)                     # larger logits: more non-blank choices
        m.out.bias[BLANK] -= 1.0 * sharpen
    m.set_feature_normalization(torch.full((192,), -2.0), torch.full((192,), 7.0))
    m.set_quantization(w_bits=w_bits)
    if w_bits:
        m.logit_observer.maxabs.fill_(6.0)
    return m.eval()


def _feats(t, seed):
    g = torch.Generator().manual_seed(seed)
    return ((torch.randint(-128, 128, (t, 192), generator=g) - 20) * (3 / 32)).float()


def _path_loglik(model, feats, hyp):
    """Log-likelihood of an alignment, from the full training lattice (independent of decode)."""
    tokens = torch.tensor([list(hyp.tokens) or [1]])
    with torch.no_grad():
        lp = torch.log_softmax(model(feats[None], torch.tensor([feats.shape[0]]), tokens), -1)
    total, u = 0.0, 0
    for t, sym in hyp.path():
        total += float(lp[0, t, u, sym])
        if sym != BLANK:
            u += 1
    return total


@pytest.mark.parametrize("w_bits", [None, 4])
def test_greedy_batch_equals_one_by_one(w_bits):
    m = _model(w_bits, sharpen=4.0)
    lens = [9, 14, 3, 11]
    feats = torch.zeros(4, 14, 192)
    for n, t in enumerate(lens):
        feats[n, :t] = _feats(t, n)
    batch = greedy_batch(m, feats, torch.tensor(lens))
    single = [greedy(m, _feats(t, n)) for n, t in enumerate(lens)]
    assert batch == single
    assert any(len(s) > 0 for s in single)


@pytest.mark.parametrize("w_bits", [None, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_one_is_greedy(w_bits, seed):
    m = _model(w_bits, seed=seed, sharpen=4.0)
    f = _feats(12, seed + 10)
    for max_symbols in (1, 3):
        ids = greedy_ids(m, f[None], max_symbols=max_symbols)[0]
        hyps = beam_search_hyps(m, f, beam=1, max_symbols=max_symbols)
        assert list(hyps[0].tokens) == ids
        assert beam_search(m, f, beam=1, nbest=1, max_symbols=max_symbols)[0][0] == decode(ids)


@pytest.mark.parametrize("w_bits", [None, 8])
def test_nbest_sorted_distinct_and_scored_by_their_paths(w_bits):
    m = _model(w_bits, seed=3, sharpen=3.0)
    f = _feats(10, 5)
    hyps = beam_search_hyps(m, f, beam=6, max_symbols=2)
    assert len(hyps) == 6
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert len({h.tokens for h in hyps}) == len(hyps)
    for h in hyps:
        path = h.path()
        # one blank closes every frame, at most max_symbols labels per frame, in time order
        assert [t for t, s in path if s == BLANK] == list(range(10))
        assert [s for _, s in path if s != BLANK] == list(h.tokens)
        assert all(sum(1 for t2, s in path if t2 == t and s != BLANK) <= 2 for t in range(10))
        assert [t for t, _ in path] == sorted(t for t, _ in path)
        assert h.score == pytest.approx(_path_loglik(m, f, h), abs=1e-4)
    nb = beam_search(m, f, beam=6, nbest=3, max_symbols=2)
    assert nb == [(h.text, h.score) for h in hyps[:3]]


def test_exhaustive_beam_is_the_brute_force_nbest():
    """T = 2 frames, one label per frame at most: every alignment enumerated by hand."""
    m = _model(seed=4, sharpen=2.0)
    f = _feats(2, 7)
    with torch.no_grad():
        enc, _, _ = m.transcribe(f[None])
        enc = enc[0]

        def lp(t, prefix):
            p, _ = m.predict(torch.tensor([[BLANK] + list(prefix)]))
            return torch.log_softmax(m.join(enc[t], p[0, -1]), -1).double()

        best = {}                                       # tokens -> best alignment score

        def offer(tokens, score):
            best[tokens] = max(best.get(tokens, -1e30), score)

        V = m.vocab_size
        l0 = lp(0, ())
        for a in range(V):                              # frame 0: blank, or label a then blank
            if a == BLANK:
                s0, pre = float(l0[BLANK]), ()
            else:
                pre = (a,)
                s0 = float(l0[a]) + float(lp(0, pre)[BLANK])
            l1 = lp(1, pre)
            for b in range(V):
                if b == BLANK:
                    offer(pre, s0 + float(l1[BLANK]))
                else:
                    offer(pre + (b,), s0 + float(l1[b]) + float(lp(1, pre + (b,))[BLANK]))
    ranked = sorted(best.items(), key=lambda kv: -kv[1])[:8]
    got = beam_search(m, f, beam=V * V, nbest=8, max_symbols=1)    # every alignment kept
    assert [t for t, _ in got] == [decode(k) for k, _ in ranked]
    for (_, s), (_, r) in zip(got, ranked):
        assert s == pytest.approx(r, abs=1e-5)


def test_argument_errors():
    m = _model()
    f = _feats(3, 0)
    with pytest.raises(ValueError, match="beam must be a positive integer"):
        beam_search(m, f, beam=0, nbest=1)
    with pytest.raises(ValueError, match=r"nbest must be between 1 and beam \(2\)"):
        beam_search(m, f, beam=2, nbest=3)
    with pytest.raises(ValueError, match="max_symbols must be a positive integer"):
        greedy(m, f, max_symbols=0)
    with pytest.raises(ValueError, match=r"feats must have shape \(T, F\)"):
        greedy(m, f[None])
    with pytest.raises(ValueError, match=r"feats must have shape \(T, F\)"):
        beam_search(m, f[None])
