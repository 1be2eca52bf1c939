"""A character n-gram language model of the domain, and shallow fusion with the RNN-T beam search.

PocketSphinx, the baseline, decodes with a trigram language model built from the corpus's
training texts. This module gives the RNN-T the same kind of knowledge: a character n-gram model
of the training transcripts, added to the beam search's scores (*shallow fusion*). The acoustic
model, the accelerator and everything it computes are unchanged; the language model only
re-ranks the hypotheses on the host.

Model
-----
Symbols are the recognizer's: :data:`model.text.VOCAB` indices 1..28 (space, apostrophe,
``a``..``z``). Index 0, the transducer's blank, never occurs in a transcript, so the language
model uses it for the sentence boundary: as context it is the start of the sentence (a
transcript is preceded by ``order - 1`` of them), as a prediction the end of the sentence.
Probabilities are interpolated Kneser-Ney with one absolute discount ``D`` (default 0.75): the
highest order uses the n-grams' counts, each lower order the number of distinct symbols seen
before it (continuation counts), and the lowest interpolates with the uniform distribution over
the 29 predictable symbols, so every symbol has a nonzero probability after every context::

    P_k(w | h) = max(c_k(h w) - D, 0) / c_k(h .)  +  D * N_k(h .) / c_k(h .) * P_(k-1)(w | h')

where ``h'`` drops the oldest symbol of ``h``, ``c_k(h .)`` sums ``c_k(h w)`` over ``w`` and
``N_k(h .)`` counts the ``w`` with ``c_k(h w) > 0``; a context never seen at order ``k`` passes
straight to ``k - 1``.

Fusion
------
With :class:`Fusion` the beam search (:func:`model.decode.beam_search_hyps` and the simulation
host :mod:`sim.rnnt_host`, which share :func:`model.decode.beam_step`) ranks a hypothesis by::

    log p_rnnt(path) + weight * log P_lm(labels) + bonus * len(labels)

the language model's term added label by label as the hypothesis grows, and its end-of-sentence
probability when the search ends (:meth:`Fusion.finish`). ``bonus`` offsets the penalty the
extra log-probabilities put on long hypotheses. Greedy decoding does not use the language model.

Lexicon
-------
A model also records its *lexicon*: every word of the training transcripts. With a lexicon
penalty ``P > 0`` (``Fusion(lexicon=P)``, ``--lm-lexicon P``; 0, off, unless a model file
records another default) a hypothesis loses ``P`` once for every word that is not in the
lexicon: at the label where its spelling stops being the beginning of any lexicon word, or, for
a word that is such a beginning but not a word itself (``conten``), at the space or the end of
sentence that closes it. Words are the runs of labels between spaces; the apostrophe is part of
a word. The character n-grams alone give every spelling some probability, so a word can come
out spelled by its sound (``continue`` as ``contenother``); the penalty pushes such spellings
down the beam unless the acoustics insist. It comes late for a word that begins a listed one
(``wan``, the beginning of ``want``, for ``juan``): only when the word ends, by which time a
narrow beam may have dropped the right spelling.

File format
-----------
gzip-compressed JSON: ``format`` (``"zeroskip-charlm"``), ``version``, ``order``, ``discount``,
``weight`` and ``bonus`` (the fusion parameters to use by default), ``vocab``
(:data:`model.text.VOCAB`, which must match), ``sentences`` and ``ngrams``: every
highest-order n-gram, spelled with ``#`` for the sentence boundary, with its count; optionally
``words`` (the lexicon, sorted) and ``lexicon`` (the default lexicon penalty, 0 when absent: files
written before the lexicon have neither and still load). A file that is not such an object, or
whose vocabulary or version differs, is refused with :class:`LMError`.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .text import BLANK, VOCAB, encode, is_normalized

__all__ = ["CharLM", "Fusion", "LMError", "FORMAT", "VERSION", "BOUNDARY", "DEFAULT_ORDER",
           "DEFAULT_WEIGHT", "DEFAULT_BONUS", "DEFAULT_LEXICON", "describe"]

FORMAT = "zeroskip-charlm"
VERSION = 1
#: Index of the sentence boundary (start as context, end as prediction): the blank's index.
BOUNDARY = BLANK
#: Order, and fusion parameters recorded in a model, by default: tuned on 400 dev utterances
#: with the previous default model (``benchmarks/lm_tune.py``; figures in the README).
DEFAULT_ORDER = 7
DEFAULT_WEIGHT = 0.3
DEFAULT_BONUS = 0.6
#: Lexicon penalty recorded in a model by default: off (see "Lexicon" above).
DEFAULT_LEXICON = 0.0
#: The label that separates words.
SPACE = VOCAB.index(" ")
_SPELL = ["#"] + VOCAB[1:]
_UNSPELL = {ch: i for i, ch in enumerate(_SPELL)}


class LMError(ValueError):
    """A language model file that cannot be used, or an invalid language model parameter."""


class CharLM:
    """Interpolated Kneser-Ney character n-gram model over :data:`model.text.VOCAB`.

    Build one with :meth:`train` or :meth:`load`. :meth:`logprobs` gives the log-probability of
    every next symbol after a label sequence, :meth:`score` that of a whole transcript.
    """

    def __init__(self, ngrams: dict[tuple, int], *, order: int, discount: float = 0.75,
                 sentences: int = 0, weight: float = DEFAULT_WEIGHT, bonus: float = DEFAULT_BONUS,
                 words: Iterable[str] | None = None, lexicon: float = DEFAULT_LEXICON):
        if not isinstance(order, int) or order < 1:
            raise LMError(f"order must be a positive integer, not {order!r}")
        if not 0.0 < discount < 1.0:
            raise LMError(f"discount must be between 0 and 1 (exclusive), not {discount!r}")
        self.order, self.discount, self.sentences = order, float(discount), sentences
        _check_fusion(weight, bonus, lexicon)
        self.weight, self.bonus, self.lexicon = float(weight), float(bonus), float(lexicon)
        #: The lexicon: every word of the training transcripts (empty: none recorded).
        self.words: frozenset[str] = frozenset(words or ())
        for word in self.words:
            if not word or " " in word or not is_normalized(word):
                raise LMError(f"lexicon word {word!r} is not a normalized word")
        self._lexicon_sets = None
        self.path: Path | None = None               # the file it was loaded from
        self.ngrams = dict(ngrams)
        # counts[k][context] = {symbol: count} for k = 1..order (context of length k - 1).
        counts = [None] + [defaultdict(dict) for _ in range(order)]
        for g, c in self.ngrams.items():
            if len(g) != order or c < 1:
                raise LMError(f"n-gram {g!r} with count {c!r} does not fit an order-{order} model")
            counts[order][g[:-1]][g[-1]] = c
        for k in range(order - 1, 0, -1):           # continuation counts from the order above
            for ctx, nxt in counts[k + 1].items():
                lower = counts[k][ctx[1:]]
                for w in nxt:
                    lower[w] = lower.get(w, 0) + 1
        self._counts = counts
        self._memo: dict[tuple, list[float]] = {}

    def __reduce__(self):
        # Pickled (into a simulator process) as its n-grams; the tables are rebuilt there.
        return (_rebuild, (self.ngrams, self.order, self.discount, self.sentences, self.weight,
                           self.bonus, sorted(self.words), self.lexicon))

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], *, order: int = DEFAULT_ORDER, discount: float = 0.75,
              weight: float = DEFAULT_WEIGHT, bonus: float = DEFAULT_BONUS,
              lexicon: float = DEFAULT_LEXICON) -> CharLM:
        """Count the ``order``-grams of normalized transcripts ``texts`` and collect their
        words (the lexicon); ``weight``, ``bonus`` and ``lexicon`` are the fusion parameters
        recorded with the model (:meth:`fusion`)."""
        if not isinstance(order, int) or order < 1:
            raise LMError(f"order must be a positive integer, not {order!r}")
        ngrams: dict[tuple, int] = {}
        words: set[str] = set()
        n = 0
        for text in texts:
            if not is_normalized(text):
                raise LMError(f"transcript {text!r} is not normalized (model.text.normalize)")
            words.update(text.split())
            seq = (BOUNDARY,) * (order - 1) + tuple(encode(text)) + (BOUNDARY,)
            for i in range(len(seq) - order + 1):
                g = seq[i:i + order]
                ngrams[g] = ngrams.get(g, 0) + 1
            n += 1
        if n == 0:
            raise LMError("no transcripts to train the language model on")
        return cls(ngrams, order=order, discount=discount, sentences=n, weight=weight,
                   bonus=bonus, words=words, lexicon=lexicon)

    def fusion(self, weight: float | None = None, bonus: float | None = None,
               lexicon: float | None = None) -> Fusion:
        """A :class:`Fusion` with this model, by default at its recorded weight, bonus and
        lexicon penalty."""
        return Fusion(self, self.weight if weight is None else weight,
                      self.bonus if bonus is None else bonus,
                      self.lexicon if lexicon is None else lexicon)

    def lexicon_sets(self) -> tuple[frozenset, frozenset]:
        """``(prefixes, words)``: the label tuples that begin a lexicon word (the empty one
        included) and those that are one."""
        if self._lexicon_sets is None:
            words = frozenset(tuple(encode(w)) for w in self.words)
            prefixes = frozenset(w[:i] for w in words for i in range(len(w) + 1))
            self._lexicon_sets = (prefixes, words)
        return self._lexicon_sets

    # -- querying -------------------------------------------------------------------------------
    def _probs(self, ctx: tuple, k: int) -> list[float]:
        key = (k, ctx)
        got = self._memo.get(key)
        if got is not None:
            return got
        V = len(VOCAB)
        if k == 0:
            out = [1.0 / V] * V
        else:
            lower = self._probs(ctx[1:], k - 1)
            nxt = self._counts[k].get(ctx)
            if not nxt:
                out = lower
            else:
                total = sum(nxt.values())
                back = self.discount * len(nxt) / total
                out = [back * p for p in lower]
                for w, c in nxt.items():
                    out[w] += (c - self.discount) / total
        self._memo[key] = out
        return out

    def context(self, tokens: tuple) -> tuple:
        """The ``order - 1`` symbols a model conditions on after labels ``tokens``."""
        n = self.order - 1
        if n == 0:
            return ()
        ctx = tuple(tokens[-n:])
        return (BOUNDARY,) * (n - len(ctx)) + ctx

    def logprobs(self, tokens: tuple) -> list[float]:
        """Natural-log probabilities of each next symbol after labels ``tokens`` (a list of
        ``len(VOCAB)``; index :data:`BOUNDARY` is the end of the sentence)."""
        key = ("log", self.context(tokens))
        got = self._memo.get(key)
        if got is None:
            got = [math.log(p) for p in self._probs(key[1], self.order)]
            self._memo[key] = got
        return got

    def score(self, text: str) -> float:
        """Natural-log probability of transcript ``text``, its end of sentence included."""
        tokens = tuple(encode(text))
        total = 0.0
        for i, w in enumerate(tokens + (BOUNDARY,)):
            total += self.logprobs(tokens[:i])[w]
        return total

    # -- files ----------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model (see the module docstring), atomically."""
        obj = {"format": FORMAT, "version": VERSION, "order": self.order,
               "discount": self.discount, "weight": self.weight, "bonus": self.bonus,
               "vocab": VOCAB, "sentences": self.sentences,
               "ngrams": {"".join(_SPELL[s] for s in g): c
                          for g, c in sorted(self.ngrams.items())}}
        if self.words:
            obj["words"] = sorted(self.words)
        if self.lexicon:
            obj["lexicon"] = self.lexicon
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), 9,
                                      mtime=0))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> CharLM:
        """Read a model written by :meth:`save`; :class:`LMError` if it is not one."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise LMError(f"language model {path} does not exist") from None
        except OSError as e:
            raise LMError(f"language model {path} cannot be read: {e}") from None
        try:
            obj = json.loads(gzip.decompress(raw))
        except (OSError, EOFError, ValueError) as e:
            raise LMError(f"{path} is not a zeroskip language model (gzip-compressed JSON): "
                          f"{e}") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise LMError(f"{path} is not a zeroskip language model (no format {FORMAT!r})")
        if obj.get("version") != VERSION:
            raise LMError(f"{path}: language model format version {obj.get('version')!r}, this "
                          f"zeroskip reads version {VERSION}; rebuild it with `zeroskip lm`")
        if obj.get("vocab") != VOCAB:
            raise LMError(f"{path}: its vocabulary differs from the recognizer's; rebuild it "
                          f"with `zeroskip lm`")
        try:
            order = obj["order"]
            ngrams = {}
            for s, c in obj["ngrams"].items():
                ngrams[tuple(_UNSPELL[ch] for ch in s)] = c
            words = obj.get("words", [])
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise LMError("its lexicon (words) is not a list of words")
            lm = cls(ngrams, order=order, discount=obj["discount"],
                     sentences=obj.get("sentences", 0), weight=obj["weight"], bonus=obj["bonus"],
                     words=words, lexicon=obj.get("lexicon", 0.0))
        except LMError as e:
            raise LMError(f"{path}: {e}") from None
        except (KeyError, TypeError, AttributeError) as e:
            raise LMError(f"{path}: malformed language model ({type(e).__name__}: {e})") from None
        lm.path = path
        return lm


def _check_fusion(weight, bonus, lexicon=0.0) -> None:
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
        raise LMError(f"language model weight must be a finite number >= 0, not {weight!r}")
    if not (isinstance(bonus, (int, float)) and math.isfinite(bonus)):
        raise LMError(f"label bonus must be a finite number, not {bonus!r}")
    if not (isinstance(lexicon, (int, float)) and math.isfinite(lexicon) and lexicon >= 0):
        raise LMError(f"lexicon penalty must be a finite number >= 0, not {lexicon!r}")


def describe(info: dict) -> str:
    """``"language model (order 7, weight 0.3, bonus 0.6)"`` for a :attr:`Fusion.info` dict
    (``", lexicon 4"`` added when the lexicon penalty is on)."""
    lexicon = f", lexicon {info['lexicon']:g}" if info.get("lexicon") else ""
    return (f"language model (order {info['order']}, weight {info['weight']:g}, bonus "
            f"{info['bonus']:g}{lexicon})")


def _rebuild(ngrams, order, discount, sentences, weight, bonus, words=(), lexicon=0.0) -> CharLM:
    return CharLM(ngrams, order=order, discount=discount, sentences=sentences, weight=weight,
                  bonus=bonus, words=words, lexicon=lexicon)


def _partial_word(tokens: tuple) -> tuple:
    """The labels after the last space of ``tokens``: the word being spelled."""
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i] == SPACE:
            return tokens[i + 1:]
    return tokens


@dataclass(frozen=True)
class Fusion:
    """Shallow fusion of a :class:`CharLM` into a beam search (see the module docstring)."""

    lm: CharLM
    weight: float = 0.5
    bonus: float = 0.0
    lexicon: float = 0.0

    def __post_init__(self):
        _check_fusion(self.weight, self.bonus, self.lexicon)
        if self.lexicon and not self.lm.words:
            where = f" {self.lm.path}" if self.lm.path else ""
            raise LMError(f"the language model{where} records no lexicon, so a lexicon penalty "
                          f"cannot be applied; rebuild it with `zeroskip lm`")

    @property
    def info(self) -> dict:
        """``order``, ``weight``, ``bonus`` and ``lexicon`` (the penalty): what reports record
        of it (:func:`describe`)."""
        return {"order": self.lm.order, "weight": self.weight, "bonus": self.bonus,
                "lexicon": self.lexicon}

    def adjust(self, lp: list[list[float]], hyps, blank: int) -> None:
        """Add the language model's terms to ``lp[a][k]``, the log-probability of hypothesis
        ``hyps[a]``'s next symbol ``k``, for every label ``k`` (in place; the blank keeps its
        acoustic score)."""
        w, b = self.weight, self.bonus
        for row, h in zip(lp, hyps):
            lm = self.lm.logprobs(h.tokens)
            for k in range(len(row)):
                if k != blank:
                    row[k] += w * lm[k] + b
            if self.lexicon:
                self._penalize(row, h.tokens, blank)

    def _unfinished(self, part: tuple) -> bool:
        """Whether closing the word ``part`` (with a space or the end of sentence) costs the
        penalty: it begins a lexicon word without being one. A word already outside the
        lexicon's beginnings was penalized when it left them."""
        prefixes, words = self.lm.lexicon_sets()
        return bool(part) and part in prefixes and part not in words

    def _penalize(self, row: list[float], tokens: tuple, blank: int) -> None:
        prefixes, _ = self.lm.lexicon_sets()
        part = _partial_word(tokens)
        if part not in prefixes:
            return                      # already out of the lexicon, and penalized then
        for k in range(len(row)):
            if k == blank:
                continue
            if k == SPACE:
                if self._unfinished(part):
                    row[k] -= self.lexicon
            elif part + (k,) not in prefixes:
                row[k] -= self.lexicon

    def finish(self, hyps) -> list:
        """Add each final hypothesis' end-of-sentence terms to its ``score`` (in place; with
        the lexicon penalty, that of an unfinished last word); return them best first."""
        for h in hyps:
            h.score += self.weight * self.lm.logprobs(h.tokens)[BOUNDARY]
            if self.lexicon and self._unfinished(_partial_word(h.tokens)):
                h.score -= self.lexicon
        return sorted(hyps, key=lambda h: -h.score)
