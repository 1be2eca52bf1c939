"""Tests of model/lm.py: Kneser-Ney probabilities by hand, files, and fusion in the beam search."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from model.decode import beam_search_hyps
from model.lm import BOUNDARY, CharLM, Fusion, LMError
from model.text import VOCAB, encode
from tests.model.test_decode import _feats, _model, _path_loglik

TEXTS = ["turn on the lights", "turn off the lights in the kitchen", "call john smith",
         "set a timer for five minutes", "what's the weather in boston"]
V = len(VOCAB)
A, B = encode("a")[0], encode("b")[0]


def test_unigram_by_hand():
    lm = CharLM.train(["a"], order=1)            # events: a, end of sentence
    p = [math.exp(x) for x in lm.logprobs(())]
    assert p[A] == pytest.approx((1 - 0.75) / 2 + 0.75 * 2 / 2 / V, rel=1e-12)
    assert p[BOUNDARY] == pytest.approx(p[A], rel=1e-12)
    assert p[B] == pytest.approx(0.75 / V, rel=1e-12)


def test_bigram_uses_continuation_counts():
    lm = CharLM.train(["ab", "ab"], order=2)     # bigrams #a, ab, b# (twice each)
    # Order 1 counts distinct predecessors: a after #, b after a, # after b: one each.
    p1_b = (1 - 0.75) / 3 + 0.75 * 3 / 3 / V
    p = [math.exp(x) for x in lm.logprobs((A,))]
    assert p[B] == pytest.approx((2 - 0.75) / 2 + 0.75 * 1 / 2 * p1_b, rel=1e-12)
    # An unseen context falls back to the order-1 distribution.
    q = [math.exp(x) for x in lm.logprobs((encode("z")[0],))]
    assert q[B] == pytest.approx(p1_b, rel=1e-12)


@pytest.mark.parametrize("order", [1, 2, 4, 7])
def test_distributions_sum_to_one(order):
    lm = CharLM.train(TEXTS, order=order)
    for text in ["", "t", "turn o", "call j", "zzz qq", "what's"]:
        lp = lm.logprobs(tuple(encode(text)) if text else ())
        assert len(lp) == V
        assert math.fsum(math.exp(x) for x in lp) == pytest.approx(1.0, abs=1e-12)
        assert all(math.isfinite(x) for x in lp)


def test_in_domain_text_scores_higher():
    lm = CharLM.train(TEXTS, order=5)
    assert lm.score("turn on the lights in the kitchen") > lm.score("kitchen the in lights the on turn")
    assert lm.score("call john smith") > lm.score("cal jhon smiht")


def test_save_load_round_trip(tmp_path):
    lm = CharLM.train(TEXTS, order=5, discount=0.6)
    lm.save(tmp_path / "lm.json.gz")
    back = CharLM.load(tmp_path / "lm.json.gz")
    assert (back.order, back.discount, back.sentences) == (5, 0.6, len(TEXTS))
    for text in TEXTS + ["zq"]:
        assert back.score(text) == lm.score(text)
    # pickled (into a simulator process) with its weights, without its memo
    import pickle
    f = pickle.loads(pickle.dumps(lm.fusion(0.25, 0.5, 2.0)))
    assert (f.weight, f.bonus, f.lexicon, f.lm.order, f.lm.discount) == (0.25, 0.5, 2.0, 5, 0.6)
    assert f.lm.words == back.words == lm.words == {w for t in TEXTS for w in t.split()}
    assert [f.lm.score(t) for t in TEXTS] == [lm.score(t) for t in TEXTS]


def _write(path, obj):
    path.write_bytes(gzip.compress(json.dumps(obj).encode()))


def test_bad_files_are_refused(tmp_path):
    good = tmp_path / "lm.json.gz"
    CharLM.train(TEXTS, order=3).save(good)
    obj = json.loads(gzip.decompress(good.read_bytes()))
    with pytest.raises(LMError, match="does not exist"):
        CharLM.load(tmp_path / "missing.gz")
    (tmp_path / "text").write_text("hello")
    with pytest.raises(LMError, match="not a zeroskip language model"):
        CharLM.load(tmp_path / "text")
    (tmp_path / "cut").write_bytes(good.read_bytes()[:40])
    with pytest.raises(LMError, match="not a zeroskip language model"):
        CharLM.load(tmp_path / "cut")
    for change, match in [({"format": "other"}, "no format"),
                          ({"version": 99}, "version 99"),
                          ({"vocab": VOCAB[:-1]}, "vocabulary differs"),
                          ({"ngrams": {"ab": 1}}, "does not fit an order-3"),
                          ({"ngrams": {"a!c": 1}}, "malformed"),
                          ({"words": "turn"}, "not a list of words"),
                          ({"words": ["Turn"]}, "not a normalized word"),
                          ({"words": ["turn on"]}, "not a normalized word"),
                          ({"lexicon": -1}, "lexicon penalty")]:
        _write(tmp_path / "bad", {**obj, **change})
        with pytest.raises(LMError, match=match):
            CharLM.load(tmp_path / "bad")


def test_argument_errors():
    with pytest.raises(LMError, match="not normalized"):
        CharLM.train(["Turn On"])
    with pytest.raises(LMError, match="no transcripts"):
        CharLM.train([])
    with pytest.raises(LMError, match="order"):
        CharLM.train(TEXTS, order=0)
    lm = CharLM.train(TEXTS, order=2)
    with pytest.raises(LMError, match="weight"):
        Fusion(lm, weight=-1)
    with pytest.raises(LMError, match="bonus"):
        Fusion(lm, weight=1, bonus=float("nan"))
    with pytest.raises(LMError, match="lexicon penalty"):
        Fusion(lm, weight=1, lexicon=-0.5)
    with pytest.raises(LMError, match="records no lexicon"):
        Fusion(CharLM(lm.ngrams, order=2), weight=1, lexicon=1.0)


def test_files_without_a_lexicon_still_load(tmp_path):
    # Files written before the lexicon existed: no "words", no "lexicon"; the lexicon is empty,
    # the penalty off, and everything else as before.
    path = tmp_path / "old.json.gz"
    CharLM.train(TEXTS, order=3, lexicon=2.5).save(path)
    obj = json.loads(gzip.decompress(path.read_bytes()))
    assert obj["lexicon"] == 2.5 and "turn" in obj["words"]
    del obj["words"], obj["lexicon"]
    _write(path, obj)
    old = CharLM.load(path)
    assert old.words == frozenset() and old.lexicon == 0.0
    assert old.fusion().info == {"order": 3, "weight": 0.3, "bonus": 0.6, "lexicon": 0.0}


def _lexicon_terms(lm, text: str, penalty: float) -> float:
    """What the lexicon penalty takes off ``text`` in total, label by label through
    :meth:`Fusion.adjust` and :meth:`Fusion.finish` (with the n-gram terms subtracted)."""
    from model.decode import Hypothesis
    on, off = Fusion(lm, weight=0.0, lexicon=penalty), Fusion(lm, weight=0.0)
    tokens, total = encode(text), 0.0
    for i, k in enumerate(tokens):
        rows = [[0.0] * V, [0.0] * V]
        h = Hypothesis(tuple(tokens[:i]), 0.0, None, None)
        on.adjust([rows[0]], [h], blank=BOUNDARY)
        off.adjust([rows[1]], [h], blank=BOUNDARY)
        total += rows[0][k] - rows[1][k]
    ends = [Hypothesis(tuple(tokens), 0.0, None, None) for _ in range(2)]
    return total + on.finish([ends[0]])[0].score - off.finish([ends[1]])[0].score


@pytest.mark.parametrize("text, oov", [
    ("turn on the lights", 0),
    ("turn  on the lights ", 0),          # empty words cost nothing
    ("turn of the lights", 0),            # "of" is in the lexicon ("turn off ...": no)
    ("tu", 1),                            # a lexicon word's beginning, ended by the sentence
    ("tu on", 1),                         # ... or by a space
    ("turnx on", 1),                      # leaves the lexicon at "x", penalized once
    ("xyz on the lite", 2),               # two words out of it
    ("what's the weather", 0),            # the apostrophe is part of the word
    ("whats the weather", 1),
])
def test_lexicon_penalty_counts_words_outside_the_lexicon(text, oov):
    lm = CharLM.train(TEXTS + ["turn of"], order=3)
    assert _lexicon_terms(lm, text, 2.5) == pytest.approx(-2.5 * oov)
    assert _lexicon_terms(lm, text, 0.0) == 0.0


def test_fused_scores_are_path_plus_language_model():
    m, f = _model(sharpen=3.0), _feats(12, 1)
    lm = CharLM.train(TEXTS, order=4)
    plain = beam_search_hyps(m, f, beam=4)
    same = beam_search_hyps(m, f, beam=4, fusion=Fusion(lm, weight=0.0))
    assert [(h.tokens, h.score) for h in same] == [(h.tokens, h.score) for h in plain]
    w, b = 0.7, 0.4
    fused = beam_search_hyps(m, f, beam=4, fusion=Fusion(lm, weight=w, bonus=b))
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    assert any(h.tokens for h in fused)
    for h in fused:
        expect = _path_loglik(m, f, h) + w * lm.score(h.text) + b * len(h.tokens)
        assert h.score == pytest.approx(expect, abs=1e-4)
    # With the lexicon penalty, each word outside the lexicon costs it once more.
    x = 1.5
    fused = beam_search_hyps(m, f, beam=4, fusion=Fusion(lm, weight=w, bonus=b, lexicon=x))
    terms = [_lexicon_terms(lm, h.text, x) for h in fused]
    assert any(terms)                               # the random model's words are not English
    for h, term in zip(fused, terms):
        expect = _path_loglik(m, f, h) + w * lm.score(h.text) + b * len(h.tokens) + term
        assert h.score == pytest.approx(expect, abs=1e-4)
