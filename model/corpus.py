"""The synthesized voice-assistant corpus: sentence plan, eSpeak NG rendering, manifests.

``generate_corpus(out_dir, hours=H)`` writes::

    out_dir/wav/<id>.wav              16 kHz mono int16 PCM
    out_dir/{train,dev,test}.jsonl    one object per utterance (see below)
    out_dir/corpus.json               generation parameters, voice and template assignment, counts

Each manifest line holds ``id``, ``audio`` (``wav/<id>.wav``, relative to ``out_dir``), ``text``
(the normalized transcript), ``duration`` (seconds), ``voice`` (eSpeak ``LANGUAGE[+VARIANT]``),
``speed`` (words per minute), ``pitch`` (eSpeak 0–100), ``snr_db`` (``null`` for clean audio),
``template`` (``<intent>.<index>``), ``split``, and also ``intent``, ``heldout`` (the template never
appears in training), ``noise`` (kind) and ``pitch_range`` (eSpeak 0–100).
:func:`read_manifest` reads one back with ``audio`` made absolute.

How the corpus is built
-----------------------
1. **Sentences.** Templates per intent (``model/corpus_data.py``: calls and messages to contacts,
   smart-home devices in rooms, lights, thermostat, timers, alarms, reminders, calendar, weather
   in cities, music by artist and genre, playback and volume, shopping lists, everyday
   questions) are expanded with slot values and generated numbers, times, dates and durations,
   then normalized with :func:`model.text.normalize`.
2. **Held-out templates.** For each intent, ``round(15%)`` of its templates (at least one) are
   drawn from the seed and never used for training; they make up :data:`HELDOUT_SHARE` of the dev
   and test utterances, so evaluation can report seen and held-out templates apart.
3. **Sentence ownership.** Every normalized sentence belongs to exactly one split, decided by a
   seeded hash of its text (80/10/10; held-out templates' sentences: dev/test only). A split only
   draws sentences it owns, so no text is in two splits, whatever the corpus size.
4. **Voices.** A voice is an English eSpeak language voice (every one: American, British, RP,
   Scottish, Lancastrian, West Midlands, Caribbean, New York) combined with a voice variant (or
   none). The usable variants (:data:`EXCLUDED_VARIANTS` lists the others and why) are split
   70/15/15 between train, dev and test, stratified by gender, so the three splits' voice sets are
   disjoint and dev and test speakers are never heard in training. Each utterance draws speed
   (:data:`SPEED_RANGE` wpm), pitch and pitch range (:data:`PITCH_LIMITS`).
5. **Audio.** eSpeak's 22050 Hz output (see ``model/espeak.py``; each utterance is synthesized
   from a pristine engine state, so it depends only on its own parameters) is trimmed of its own
   leading and trailing silence, resampled to 16 kHz (``scipy.signal.resample_poly``, 320/441),
   scaled to a random speech level (:data:`LEVEL_DB_RANGE` dBFS RMS), padded with random leading
   and trailing silence (:data:`SILENCE_RANGE` seconds) and, except for :data:`CLEAN_FRACTION`
   of the utterances, mixed with noise (white, pink, brown, babble-like speech-shaped noise with
   a syllabic envelope, or mains hum) at an SNR drawn from :data:`SNR_DB_RANGE`. SNR is the ratio
   of the speech power (mean square over the speech span, padding excluded) to the noise power
   (mean square over the whole file). A mix whose peak would exceed 0.98 full scale is scaled down
   as a whole (SNR unchanged).
6. **Word sequences (optional).** With ``word_sequences=F`` (``zeroskip corpus
   --word-sequences F``), a fraction ``F`` of the training split's utterances are random
   sequences of 2-8 words drawn uniformly from the vocabulary of the training split's own
   sentences (template ``words.0``, intent ``words``), so the model hears the domain's words in
   orders no template produces and leans less on memorized sentences; dev and test are the same
   as without it (each split has its own random stream). Such a sentence must be one the
   training split owns (step 3), like every other.
7. **Size.** Each split is planned until its *estimated* duration reaches its share of ``hours``
   (80/10/10). The estimate (:func:`estimate_duration`) is fitted to eSpeak; the real total is
   in ``corpus.json`` (typically within a few percent).

Determinism and reruns
----------------------
Everything derives from ``seed``: the same seed gives the same sentences, voices, parameters and
byte-identical WAV files (with the same eSpeak NG, numpy and scipy versions, recorded in
``corpus.json``). Each split's utterances come from its own random stream, so a larger ``hours``
with the same seed extends every split without changing its first utterances. An utterance id
ends with a digest of everything that determines its audio, so a rerun skips exactly the WAV
files that already exist with the right content; WAVs are written under a temporary name and
renamed, and a truncated or malformed WAV (from a crash) is detected and rendered again.

Speed
-----
eSpeak NG itself is fast (about 4 ms for a 2.5 s utterance); with the fork per utterance,
resampling, noise and the WAV write, one worker renders about 120-140 s of audio per second and
two workers about 240-260 (measured on this project's 2-core machine while other jobs ran): a
20-hour corpus takes about five minutes. Workers are started with the ``spawn`` method, so a
script that calls :func:`generate_corpus` with ``workers > 1`` must do so under
``if __name__ == "__main__":``.

Dimension letters
-----------------
``S``  audio samples (16 kHz unless stated otherwise)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import multiprocessing.util
import os
import random
import re
import time
import wave
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy.signal import resample_poly

from .corpus_data import SLOTS, TEMPLATES
from .espeak import ESPEAK_SAMPLE_RATE, Espeak
from .text import normalize

__all__ = [
    "SAMPLE_RATE", "SPLITS", "SPLIT_FRACTIONS", "HELDOUT_TEMPLATE_FRACTION", "HELDOUT_SHARE",
    "VARIANT_FRACTIONS", "EXCLUDED_VARIANTS", "SPEED_RANGE", "PITCH_LIMITS", "SNR_DB_RANGE",
    "CLEAN_FRACTION", "NOISE_KINDS", "SILENCE_RANGE", "LEVEL_DB_RANGE", "MANIFEST_KEYS",
    "Template", "Utterance", "Rendering", "Synthesizer", "CorpusError",
    "templates", "heldout_templates", "voice_splits", "available_voices", "speech_text",
    "sentences", "training_vocabulary", "WORDS_TEMPLATE", "WORDS_PER_SEQUENCE",
    "estimate_duration", "plan_corpus", "render", "make_noise",
    "generate_corpus", "read_manifest", "plan_examples", "make_examples",
]

#: Sample rate of the corpus audio (Hz).
SAMPLE_RATE = 16000
#: Split names, in the order they are planned and reported.
SPLITS = ("train", "dev", "test")
#: Share of the requested hours, and of sentence ownership, per split.
SPLIT_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}
#: Fraction of each intent's templates held out of training (at least one per intent).
HELDOUT_TEMPLATE_FRACTION = 0.15
#: Fraction of dev and test utterances drawn from held-out templates.
HELDOUT_SHARE = 1 / 3
#: Share of the usable voice variants per split (stratified by gender; at least one of each
#: gender in dev and test). The language voices without a variant are training voices.
VARIANT_FRACTIONS = {"train": 0.7, "dev": 0.15, "test": 0.15}
#: Voice variants not used, and why.
EXCLUDED_VARIANTS = {
    "fast": "identical to the plain voice (it only sets a speed, which the corpus sets itself)",
    "whisper": "whispered: no voicing, not what a voice assistant hears",
    "whisperf": "whispered: no voicing, not what a voice assistant hears",
    "caleb": "breath only (voicing 0): whispered",
    "Demonic": "extreme effects voice",
}
#: Speaking rate range (words per minute; eSpeak's default is 175).
SPEED_RANGE = (130, 230)
#: Ranges of eSpeak's base pitch and pitch-range parameters (0-100, 50 = the voice's own).
PITCH_LIMITS = {"pitch": (25, 75), "pitch_range": (20, 80)}
#: SNR range (dB) of the noisy utterances.
SNR_DB_RANGE = (5.0, 30.0)
#: Fraction of utterances left clean (no added noise; ``snr_db`` is null).
CLEAN_FRACTION = 0.2
#: Kinds of additive noise, drawn uniformly.
NOISE_KINDS = ("white", "pink", "brown", "babble", "hum")
#: Range of the leading and (independently) trailing silence (seconds).
SILENCE_RANGE = (0.05, 0.5)
#: Range of the speech level (dBFS, RMS over the speech span).
LEVEL_DB_RANGE = (-32.0, -18.0)
#: Keys of every manifest line (the shared interface), in order; extra keys follow them.
MANIFEST_KEYS = ("id", "audio", "text", "duration", "voice", "speed", "pitch", "snr_db",
                 "template", "split")
#: Bumped whenever rendering changes, so reruns re-render instead of keeping stale audio.
RENDER_VERSION = 1
_PEAK_LIMIT = 0.98


class CorpusError(ValueError):
    """A corpus request or file is wrong; the message says what and how to fix it."""


# -- templates ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """One sentence template: ``id`` ``"<intent>.<index>"``, its ``intent`` and ``pattern``."""
    id: str
    intent: str
    pattern: str


_TOKEN_RE = re.compile(r"\{[a-z_]+\}|[\[\]()|]|[^\[\]()|{}]+")


def _parse(pattern: str):
    """Parse the template grammar into nested tuples: ("seq", items), ("alt", seqs),
    ("opt", seq), ("slot", name), ("text", s)."""
    tokens = _TOKEN_RE.findall(pattern)
    if "".join(tokens) != pattern:
        raise CorpusError(f"template {pattern!r} has a stray '{{' or '}}'")
    pos = 0

    def seq(closers: str):
        nonlocal pos
        items = []
        while pos < len(tokens) and tokens[pos] not in closers:
            tok = tokens[pos]
            pos += 1
            if tok == "(":
                alts = [seq("|)")]
                while pos < len(tokens) and tokens[pos] == "|":
                    pos += 1
                    alts.append(seq("|)"))
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise CorpusError(f"template {pattern!r}: '(' without ')'")
                pos += 1
                items.append(("alt", alts))
            elif tok == "[":
                inner = seq("]")
                if pos >= len(tokens) or tokens[pos] != "]":
                    raise CorpusError(f"template {pattern!r}: '[' without ']'")
                pos += 1
                items.append(("opt", inner))
            elif tok in ")]|":
                raise CorpusError(f"template {pattern!r}: unexpected {tok!r}")
            elif tok.startswith("{"):
                name = tok[1:-1]
                if name not in SLOTS and name not in _GENERATORS:
                    raise CorpusError(f"template {pattern!r}: unknown slot {{{name}}}; slots: "
                                      f"{', '.join(sorted(set(SLOTS) | set(_GENERATORS)))}")
                items.append(("slot", name))
            else:
                items.append(("text", tok))
        return ("seq", items)

    tree = seq("")
    if pos != len(tokens):
        raise CorpusError(f"template {pattern!r}: unexpected {tokens[pos]!r}")
    return tree


def _expand(node, rng: random.Random) -> str:
    kind, value = node
    if kind == "seq":
        return "".join(_expand(n, rng) for n in value)
    if kind == "alt":
        return _expand(value[rng.randrange(len(value))], rng)
    if kind == "opt":
        return _expand(value, rng) if rng.random() < 0.5 else ""
    if kind == "slot":
        gen = _GENERATORS.get(value)
        return gen(rng) if gen is not None else rng.choice(SLOTS[value])
    return value


@functools.lru_cache(maxsize=None)
def templates() -> tuple[Template, ...]:
    """All templates, in intent order then list order (checked: they all parse)."""
    out = []
    for intent, patterns in TEMPLATES.items():
        for i, pattern in enumerate(patterns):
            _parse(pattern)
            out.append(Template(f"{intent}.{i:02d}", intent, pattern))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _tree(pattern: str):
    return _parse(pattern)


@functools.lru_cache(maxsize=64)
def heldout_templates(seed: int = 0) -> frozenset[str]:
    """Ids of the templates held out of training for ``seed``: per intent
    ``max(1, round(HELDOUT_TEMPLATE_FRACTION * n))`` of its ``n`` templates."""
    rng = random.Random(f"{seed}:heldout-templates")
    out = set()
    for intent in TEMPLATES:
        ids = [t.id for t in templates() if t.intent == intent]
        k = max(1, round(HELDOUT_TEMPLATE_FRACTION * len(ids)))
        out.update(rng.sample(ids, k))
    return frozenset(out)


# -- slot generators (numbers, times, dates: written as digits, spelled by normalize) -----------

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_ORD_SUFFIX = {1: "st", 2: "nd", 3: "rd"}


def _ordinal_digits(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else _ORD_SUFFIX.get(n % 10, "th")
    return f"{n}{suffix}"


def _gen_time(rng: random.Random) -> str:
    r = rng.random()
    minute = rng.choice([0, 0, 15, 30, 45, 5, 10, 20, 25, 35, 40, 50, 55]) if rng.random() < 0.8 \
        else rng.randrange(60)
    if r < 0.45:
        return f"{rng.randint(1, 12)}:{minute:02d} {rng.choice(['am', 'pm'])}"
    if r < 0.72:
        return f"{rng.randint(1, 12)} {rng.choice(['am', 'pm'])}"
    if r < 0.85:
        return f"{rng.randint(1, 12)}:{minute:02d}"
    if r < 0.92:
        return f"{rng.randint(1, 12)} o'clock"
    if r < 0.96:
        return f"{rng.randint(13, 23)}:{rng.choice([0, 15, 30, 45]):02d}"
    return rng.choice(["noon", "midnight"])


def _gen_duration(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:
        n = rng.choice([10, 15, 20, 30, 40, 45, 60, 90, rng.randint(5, 120)])
        return f"{n} seconds"
    if r < 0.65:
        n = rng.randint(1, 30) if rng.random() < 0.7 else \
            rng.choice([35, 40, 45, 50, 60, 75, 90, 120])
        return f"{n} minute" if n == 1 else f"{n} minutes"
    if r < 0.8:
        n = rng.randint(1, 12)
        return f"{n} hour" if n == 1 else f"{n} hours"
    if r < 0.9:
        h, m = rng.randint(1, 3), rng.choice([5, 10, 15, 20, 30, 45])
        return f"{h} {'hour' if h == 1 else 'hours'} and {m} minutes"
    return rng.choice(["half an hour", "an hour and a half", "a minute", "an hour",
                       "a minute and a half", "a couple of minutes", "a few minutes"])


def _gen_date(rng: random.Random) -> str:
    month, day = rng.choice(_MONTHS), rng.randint(1, 28 if rng.random() < 0.9 else 31)
    if rng.random() < 0.7:
        return f"{month} {_ordinal_digits(day)}"
    return f"the {_ordinal_digits(day)} of {month}"


def _gen_day(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(["today", "tonight", "tomorrow", "this morning", "this afternoon",
                           "this evening", "tomorrow morning", "tomorrow afternoon",
                           "tomorrow night", "this weekend", "next week", "later today",
                           "the day after tomorrow"])
    if r < 0.75:
        return f"on {rng.choice(_WEEKDAYS)}"
    if r < 0.88:
        return f"next {rng.choice(_WEEKDAYS)}"
    if r < 0.95:
        return f"on {_gen_date(rng)}"
    n = rng.randint(2, 14)
    return f"in {n} days"


def _gen_percent(rng: random.Random) -> str:
    n = rng.randrange(5, 101, 5) if rng.random() < 0.8 else rng.randint(1, 100)
    return f"{n}%" if rng.random() < 0.7 else f"{n} percent"


def _gen_temperature(rng: random.Random) -> str:
    n = rng.randint(60, 80) if rng.random() < 0.7 else rng.randint(16, 28)
    return f"{n} degrees"


def _gen_number(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return str(rng.randint(0, 100))
    if r < 0.9:
        return str(rng.randint(100, 1000))
    return str(rng.randint(1000, 100000))


def _gen_contact(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return rng.choice(SLOTS["first"])
    if r < 0.7:
        return f"{rng.choice(SLOTS['first'])} {rng.choice(SLOTS['last'])}"
    return rng.choice(SLOTS["relation"])


_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "time": _gen_time,
    "duration": _gen_duration,
    "date": _gen_date,
    "day": _gen_day,
    "percent": _gen_percent,
    "temperature": _gen_temperature,
    "number": _gen_number,
    "small_number": lambda rng: str(rng.randint(2, 12)),
    "count": lambda rng: str(rng.randint(2, 12)),
    "level": lambda rng: str(rng.randint(0, 10) if rng.random() < 0.7
                             else rng.randrange(0, 101, 5)),
    "contact": _gen_contact,
    "full_name": lambda rng: f"{rng.choice(SLOTS['first'])} {rng.choice(SLOTS['last'])}",
}


# -- what eSpeak is given -------------------------------------------------------------------------

_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
                 "fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty")
_AM_RE = re.compile(rf"\b({_NUMBER_WORDS}) a m\b")


def speech_text(text: str) -> str:
    """The text eSpeak NG is given for the normalized transcript ``text``.

    It is ``text`` itself, with one exception: in a clock time, the transcript's letters "a m"
    are passed as ``AM``, because eSpeak reads a lone lowercase "a" as the article (a schwa)
    while "AM" is spoken as the two letter names "ay em" that the transcript means ("p m" is
    already read as letters). Nothing else differs, so the audio says exactly the transcript.
    """
    return _AM_RE.sub(r"\1 AM", text)


# -- voices -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def available_voices() -> dict:
    """Ask eSpeak NG (once per process) for its English voices and variants.

    Returns ``{"version": str, "languages": [name, ...], "variants": [(name, gender), ...]}``.
    """
    with Espeak() as engine:
        return {"version": engine.version,
                "languages": [v.name for v in engine.languages()],
                "variants": [(v.name, v.gender) for v in engine.variants()]}


def voice_splits(seed: int = 0, *, voices: dict | None = None) -> dict[str, list[str]]:
    """The voices of each split for ``seed``: disjoint sets of ``LANGUAGE[+VARIANT]`` names.

    Parameters
    ----------
    seed : int
        Corpus seed.
    voices : dict, optional
        As returned by :func:`available_voices` (the default).

    Returns
    -------
    dict
        ``{"train": [...], "dev": [...], "test": [...]}``, each sorted. Training has every
        language voice without a variant plus its share of the variants (each with every
        language); dev and test have only their own variants.
    """
    voices = voices or available_voices()
    languages = sorted(voices["languages"])
    usable = sorted((n, g) for n, g in voices["variants"] if n not in EXCLUDED_VARIANTS)
    rng = random.Random(f"{seed}:voice-splits")
    assigned: dict[str, list[str]] = {s: [] for s in SPLITS}
    for gender in sorted({g for _, g in usable}):
        names = [n for n, g in usable if g == gender]
        rng.shuffle(names)
        n_dev = max(1, round(VARIANT_FRACTIONS["dev"] * len(names))) if len(names) >= 3 else 0
        n_test = max(1, round(VARIANT_FRACTIONS["test"] * len(names))) if len(names) >= 3 else 0
        assigned["test"] += names[:n_test]
        assigned["dev"] += names[n_test:n_test + n_dev]
        assigned["train"] += names[n_test + n_dev:]
    out = {s: sorted(f"{lang}+{var}" for var in assigned[s] for lang in languages) for s in SPLITS}
    out["train"] = sorted(out["train"] + languages)
    return out


# -- sentences --------------------------------------------------------------------------------

def _owner(text: str, seed: int, heldout: bool) -> str:
    """The split that owns the normalized sentence ``text`` (a seeded hash of the text)."""
    digest = hashlib.blake2b(f"{seed}\0{text}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2.0 ** 64
    if heldout:
        share = SPLIT_FRACTIONS["dev"] / (SPLIT_FRACTIONS["dev"] + SPLIT_FRACTIONS["test"])
        return "dev" if u < share else "test"
    if u < SPLIT_FRACTIONS["train"]:
        return "train"
    return "dev" if u < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["dev"] else "test"


#: Template id and intent of the word-sequence sentences (see the module docstring, step 6).
WORDS_TEMPLATE = Template("words.0", "words", "")
#: Words per word-sequence sentence (inclusive range).
WORDS_PER_SEQUENCE = (2, 8)


@functools.lru_cache(maxsize=8)
def training_vocabulary(seed: int = 0, sample: int = 20000) -> tuple[str, ...]:
    """The sorted words of ``sample`` sentences of the training split (:func:`sentences`): the
    word-sequence sentences' vocabulary, which never includes a word only dev or test use."""
    return tuple(sorted({w for _, text in sentences(sample, seed=seed, split="train")
                         for w in text.split()}))


class _SentenceSampler:
    """Draws (template, normalized text) pairs that a split owns, with its template mix (and,
    in training, ``word_sequences`` of random word sequences: module docstring, step 6)."""

    _TRIES = 64

    def __init__(self, split: str, seed: int, rng: random.Random, word_sequences: float = 0.0):
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        self.split, self.seed, self.rng = split, seed, rng
        self.word_sequences = word_sequences if split == "train" else 0.0
        held = heldout_templates(seed)
        self.seen: dict[str, list[Template]] = {}
        self.held: dict[str, list[Template]] = {}
        for t in templates():
            (self.held if t.id in held else self.seen).setdefault(t.intent, []).append(t)

    def draw(self) -> tuple[Template, str]:
        rng = self.rng
        if self.word_sequences and rng.random() < self.word_sequences:
            return WORDS_TEMPLATE, self._word_sequence()
        for _ in range(1000):
            use_held = self.split != "train" and rng.random() < HELDOUT_SHARE
            pool = self.held if use_held else self.seen
            intent = rng.choice(sorted(pool))
            template = rng.choice(pool[intent])
            tree = _tree(template.pattern)
            for _ in range(self._TRIES):
                text = normalize(_expand(tree, rng))
                if _owner(text, self.seed, use_held) == self.split:
                    return template, text
        raise CorpusError(f"could not draw a sentence for split {self.split!r}; the templates "
                          f"are too few or too small")

    def _word_sequence(self) -> str:
        vocab, rng = training_vocabulary(self.seed), self.rng
        for _ in range(1000):
            n = rng.randint(*WORDS_PER_SEQUENCE)
            text = normalize(" ".join(rng.choice(vocab) for _ in range(n)))
            if _owner(text, self.seed, False) == "train":
                return text
        raise CorpusError("could not draw a word sequence the training split owns")


def sentences(count: int, *, seed: int = 0, split: str = "train") -> list[tuple[str, str]]:
    """``count`` sentences of ``split`` as ``(template id, normalized text)``, drawn exactly as
    the corpus draws them (same templates, same sentence ownership), without audio.

    Useful for language-model text: ``sentences(n, split="train")`` never yields a sentence
    or held-out template of dev or test. The stream differs from :func:`plan_corpus`'s.
    """
    sampler = _SentenceSampler(split, seed, random.Random(f"{seed}:sentences:{split}"))
    out = []
    for _ in range(count):
        template, text = sampler.draw()
        out.append((template.id, text))
    return out


# -- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Utterance:
    """One planned utterance: everything its audio depends on, and its labels.

    ``speech_text`` is what eSpeak is given (:func:`speech_text`); ``seed`` seeds eSpeak's
    noise generators and the added noise; ``snr_db`` is None when ``noise == "none"``;
    ``lead`` and ``trail`` are the added silences (seconds); ``level_db`` the speech RMS level
    (dBFS). ``estimated_duration`` is :func:`estimate_duration`'s figure (seconds).
    """
    id: str
    split: str
    text: str
    speech_text: str
    template: str
    intent: str
    heldout: bool
    voice: str
    speed: int
    pitch: int
    pitch_range: int
    noise: str
    snr_db: float | None
    lead: float
    trail: float
    level_db: float
    seed: int
    estimated_duration: float = field(compare=False)


# Fitted to eSpeak NG 1.52 over 800 corpus sentences at assorted voices and speeds (residual
# spread 12%, no trend with speed): seconds of
# trimmed speech ~= (a + b * characters) * 175 / speed.
_DURATION_FIT = (0.161, 0.0488)


def estimate_duration(text: str, speed: int) -> float:
    """Estimated seconds of eSpeak speech for ``text`` at ``speed`` words per minute (without
    the added silences)."""
    a, b = _DURATION_FIT
    return (a + b * len(text)) * 175.0 / speed


def _digest(fields: Sequence, version: str) -> str:
    blob = json.dumps([RENDER_VERSION, version, *fields], separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=4).hexdigest()


def plan_corpus(*, hours: float, seed: int = 0, voices: dict | None = None,
                word_sequences: float = 0.0) -> dict[str, list[Utterance]]:
    """Plan every utterance of a corpus of about ``hours`` hours, without synthesizing.

    Parameters
    ----------
    hours : float
        Total audio over the three splits (shared 80/10/10); fractions like 0.002 work. Each
        split gets at least one utterance.
    seed : int
        Seed of everything (templates held out, voice split, sentences, parameters, noise).
    voices : dict, optional
        As returned by :func:`available_voices` (the default asks eSpeak NG).
    word_sequences : float
        Fraction of the training split's utterances that are random word sequences (module
        docstring, step 6); 0 (the default) plans exactly the corpus without them.

    Returns
    -------
    dict
        ``{split: [Utterance, ...]}`` for the splits in :data:`SPLITS`.
    """
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not hours > 0 \
            or not math.isfinite(hours):
        raise CorpusError(f"hours must be a positive number, got {hours!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CorpusError(f"seed must be an int, got {seed!r}")
    if isinstance(word_sequences, bool) or not isinstance(word_sequences, (int, float)) \
            or not 0 <= word_sequences < 1:
        raise CorpusError(f"word_sequences must be a fraction in [0, 1), got {word_sequences!r}")
    voices = voices or available_voices()
    by_split = voice_splits(seed, voices=voices)
    held = heldout_templates(seed)
    plan = {}
    for split in SPLITS:
        target = hours * 3600.0 * SPLIT_FRACTIONS[split]
        rng = random.Random(f"{seed}:plan:{split}")
        sampler = _SentenceSampler(split, seed, rng, word_sequences)
        split_voices = by_split[split]
        items, total = [], 0.0
        while total < target or not items:
            template, text = sampler.draw()
            voice = rng.choice(split_voices)
            speed = rng.randint(*SPEED_RANGE)
            pitch = rng.randint(*PITCH_LIMITS["pitch"])
            pitch_range = rng.randint(*PITCH_LIMITS["pitch_range"])
            if rng.random() < CLEAN_FRACTION:
                noise, snr = "none", None
            else:
                noise, snr = rng.choice(NOISE_KINDS), round(rng.uniform(*SNR_DB_RANGE), 1)
            lead = round(rng.uniform(*SILENCE_RANGE), 3)
            trail = round(rng.uniform(*SILENCE_RANGE), 3)
            level = round(rng.uniform(*LEVEL_DB_RANGE), 1)
            useed = rng.getrandbits(31)
            spoken = speech_text(text)
            digest = _digest([spoken, voice, speed, pitch, pitch_range, noise, snr, lead, trail,
                              level, useed], voices["version"])
            est = estimate_duration(text, speed) + lead + trail
            items.append(Utterance(
                id=f"{split}-{len(items):06d}-{digest}", split=split, text=text,
                speech_text=spoken, template=template.id, intent=template.intent,
                heldout=template.id in held, voice=voice, speed=speed, pitch=pitch,
                pitch_range=pitch_range, noise=noise, snr_db=snr, lead=lead, trail=trail,
                level_db=level, seed=useed, estimated_duration=round(est, 3)))
            total += est
        plan[split] = items
    return plan


# -- rendering --------------------------------------------------------------------------------

def _spectral_noise(rng: np.random.Generator, n: int, shape: Callable[[np.ndarray], np.ndarray]
                    ) -> np.ndarray:
    """Gaussian noise of ``n`` samples whose amplitude spectrum is ``shape(freq_hz)``.

    Shaped at an FFT-friendly length >= ``n`` and cut to ``n`` (a prime length would make the
    FFT tens of times slower).
    """
    m = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(rng.standard_normal(m))
    spec *= shape(sfft.rfftfreq(m, 1.0 / SAMPLE_RATE))
    return sfft.irfft(spec, m)[:n]


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = math.sqrt(float(np.mean(x * x)))
    return x / rms if rms > 0 else x


def _slow_gate(rng: np.random.Generator, n: int, step_s: float = 0.4) -> np.ndarray:
    """A random gain in [0, 1] that moves smoothly every ``step_s`` seconds (talker pauses)."""
    knots = max(2, int(n / (step_s * SAMPLE_RATE)) + 2)
    values = np.clip(rng.uniform(-0.6, 1.6, knots), 0.0, 1.0)
    return np.interp(np.arange(n), np.linspace(0, n, knots), values)


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS noise of ``kind`` (one of :data:`NOISE_KINDS`) at 16 kHz.

    white: flat; pink: 1/f power; brown: 1/f² power (both flat below 20 Hz); babble: 4-8
    "talkers" of speech-shaped noise (high-passed at 100 Hz, rolling off above 500 Hz; one noise
    at a random circular shift per talker), each modulated at a syllable rate (3-7 Hz) and
    gated by random pauses; hum: 50 or 60 Hz mains with
    eight harmonics plus a faint white floor.
    """
    if n <= 0:
        return np.zeros(0)
    if kind == "white":
        return _unit_rms(rng.standard_normal(n))
    if kind == "pink":
        return _unit_rms(_spectral_noise(rng, n, lambda f: 1.0 / np.sqrt(np.maximum(f, 20.0))))
    if kind == "brown":
        return _unit_rms(_spectral_noise(rng, n, lambda f: 1.0 / np.maximum(f, 20.0)))
    if kind == "babble":
        t = np.arange(n) / SAMPLE_RATE
        talkers = int(rng.integers(4, 9))
        total = np.zeros(n)
        # one speech-shaped noise, circularly shifted per talker (an FFT per talker costs 5x more)
        voice = _unit_rms(_spectral_noise(
            rng, n, lambda f: (f / np.hypot(f, 100.0)) / np.sqrt(1.0 + (f / 500.0) ** 2)))
        for _ in range(talkers):
            rate, phase = rng.uniform(3.0, 7.0), rng.uniform(0, 2 * np.pi)
            syllables = np.maximum(0.0, np.sin(2 * np.pi * rate * t + phase)
                                   + rng.uniform(-0.3, 0.5))
            total += (np.roll(voice, int(rng.integers(n))) * syllables * _slow_gate(rng, n)
                      * rng.uniform(0.5, 1.0))
        return _unit_rms(total)
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        phase = 2 * np.pi * f0 * t
        x = np.zeros(n)
        for k in range(1, 10):
            x += rng.uniform(0.2, 1.0) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
        return _unit_rms(_unit_rms(x) + 0.05 * rng.standard_normal(n))
    raise CorpusError(f"unknown noise kind {kind!r}; kinds: {', '.join(NOISE_KINDS)}")


@dataclass(frozen=True)
class Rendering:
    """One rendered utterance at 16 kHz.

    ``audio`` int16 (S,) is what the WAV holds; ``speech`` and ``noise`` float64 (S,) are its
    two parts in full-scale units before rounding (``audio == round(32767 * (speech + noise))``
    clipped to int16); ``span`` is the (start, stop) sample range of the speech without the
    added silences.
    """
    audio: np.ndarray
    speech: np.ndarray
    noise: np.ndarray
    span: tuple[int, int]

    @property
    def snr_db(self) -> float:
        """Measured SNR (dB) by the corpus definition; ``inf`` for clean audio."""
        p_speech = float(np.mean(self.speech[self.span[0]:self.span[1]] ** 2))
        p_noise = float(np.mean(self.noise ** 2))
        return math.inf if p_noise == 0 else 10.0 * math.log10(p_speech / p_noise)


def _trim(raw: np.ndarray, threshold: int = 64, margin: int = 220) -> np.ndarray:
    """Cut eSpeak's own leading and trailing near-silence, keeping ``margin`` samples (10 ms)."""
    loud = np.flatnonzero(np.abs(raw.astype(np.int32)) > threshold)
    if loud.size == 0:
        raise CorpusError("eSpeak produced silence")
    return raw[max(0, loud[0] - margin):loud[-1] + 1 + margin]


def render(utt: Utterance, raw: np.ndarray) -> Rendering:
    """Turn eSpeak's samples for ``utt`` into the corpus audio (see the module docstring, step 5).

    Parameters
    ----------
    utt : Utterance
        The planned utterance (level, silences, noise kind, SNR and seed are used).
    raw : numpy.ndarray
        int16 (S22,) eSpeak output at :data:`model.espeak.ESPEAK_SAMPLE_RATE` Hz.

    Returns
    -------
    Rendering
        Deterministic in (``utt``, ``raw``).
    """
    speech = resample_poly(_trim(raw).astype(np.float64) / 32768.0, SAMPLE_RATE // 50,
                           ESPEAK_SAMPLE_RATE // 50)
    speech *= 10.0 ** (utt.level_db / 20.0) / math.sqrt(float(np.mean(speech ** 2)))
    lead, trail = round(utt.lead * SAMPLE_RATE), round(utt.trail * SAMPLE_RATE)
    n = lead + speech.size + trail
    full = np.zeros(n)
    full[lead:lead + speech.size] = speech
    rng = np.random.default_rng(utt.seed)
    if utt.noise == "none":
        noise = np.zeros(n)
    else:
        p_speech = float(np.mean(speech ** 2))
        noise = make_noise(utt.noise, n, rng) * math.sqrt(p_speech / 10.0 ** (utt.snr_db / 10.0))
    peak = float(np.max(np.abs(full + noise)))
    if peak > _PEAK_LIMIT:
        full *= _PEAK_LIMIT / peak
        noise *= _PEAK_LIMIT / peak
    audio = np.clip(np.round((full + noise) * 32767.0), -32768, 32767).astype(np.int16)
    return Rendering(audio, full, noise, (lead, lead + speech.size))


class Synthesizer:
    """Renders planned utterances: eSpeak NG speech (``model/espeak.py``) + :func:`render`.

    Owns an eSpeak NG server process; use as a context manager or call :meth:`close`. One per
    thread or process (the corpus uses one per worker process).
    """

    def __init__(self, *, engine: Espeak | None = None):
        self._own = engine is None
        self.engine = engine if engine is not None else Espeak()

    def speech(self, utt: Utterance) -> np.ndarray:
        """eSpeak's raw samples for ``utt``: int16 (S22,) at 22050 Hz."""
        return self.engine.synthesize(utt.speech_text, utt.voice, rate=utt.speed, pitch=utt.pitch,
                                      pitch_range=utt.pitch_range, seed=utt.seed)

    def render(self, utt: Utterance) -> Rendering:
        """The full 16 kHz rendering of ``utt``."""
        return render(utt, self.speech(utt))

    def close(self) -> None:
        if self._own:
            self.engine.close()

    def __enter__(self) -> "Synthesizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- files ------------------------------------------------------------------------------------

def _write_wav(path: Path, audio: np.ndarray) -> None:
    """Write int16 mono 16 kHz audio atomically (temporary name, then rename)."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(audio.astype("<i2").tobytes())
    os.replace(tmp, path)


def _wav_duration(path: Path) -> float | None:
    """Duration of a complete, well-formed corpus WAV at ``path``; None if missing or damaged."""
    try:
        size = path.stat().st_size
        with wave.open(str(path), "rb") as w:
            ok = (w.getnchannels() == 1 and w.getsampwidth() == 2
                  and w.getframerate() == SAMPLE_RATE and w.getnframes() > 0)
            frames = w.getnframes()
    except (OSError, EOFError, wave.Error):
        return None
    if not ok or size != 44 + 2 * frames:
        return None
    return frames / SAMPLE_RATE


def _manifest_row(utt: Utterance, duration: float) -> dict:
    return {"id": utt.id, "audio": f"wav/{utt.id}.wav", "text": utt.text,
            "duration": round(duration, 4), "voice": utt.voice, "speed": utt.speed,
            "pitch": utt.pitch, "snr_db": utt.snr_db, "template": utt.template,
            "split": utt.split, "intent": utt.intent, "heldout": utt.heldout,
            "noise": utt.noise, "pitch_range": utt.pitch_range}


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_manifest(path) -> list[dict]:
    """Read a corpus manifest (JSONL) with each ``audio`` made absolute.

    Raises
    ------
    CorpusError
        If the file is missing, a line is not JSON, or a line lacks a key of
        :data:`MANIFEST_KEYS` (the message gives the line number).
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise CorpusError(f"cannot read manifest {path}: {e.strerror}; generate a corpus with "
                          f"`zeroskip corpus --hours H --out DIR`") from None
    root = path.resolve().parent
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{number}: not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{number}: expected a JSON object")
        missing = [k for k in MANIFEST_KEYS if k not in row]
        if missing:
            raise CorpusError(f"{path}:{number}: missing {', '.join(missing)}")
        row["audio"] = str(root / row["audio"])
        rows.append(row)
    return rows


# -- generation -----------------------------------------------------------------------------------

_worker_synth: Synthesizer | None = None


def _worker_init() -> None:
    """Pool worker start: its own engine, closed (server stopped and reaped) when it exits."""
    global _worker_synth
    _worker_synth = Synthesizer()
    multiprocessing.util.Finalize(_worker_synth, _worker_synth.close, exitpriority=10)


def _render_to_file(synth: Synthesizer, utt: Utterance, wav_dir: str) -> tuple[str, float]:
    rendering = synth.render(utt)
    _write_wav(Path(wav_dir) / f"{utt.id}.wav", rendering.audio)
    return utt.id, rendering.audio.size / SAMPLE_RATE


def _worker_job(args: tuple[Utterance, str]) -> tuple[str, float]:
    """Pool task: render one utterance with this worker's own engine."""
    if _worker_synth is None:
        _worker_init()
    return _render_to_file(_worker_synth, *args)


def _versions(espeak_version: str) -> dict:
    import scipy
    return {"espeak_ng": espeak_version, "numpy": np.__version__, "scipy": scipy.__version__}


def generate_corpus(out_dir, *, hours: float, seed: int = 0, workers: int | None = None,
                    progress: bool = True, word_sequences: float = 0.0) -> dict:
    """Generate (or complete) a corpus of about ``hours`` hours in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (created). Existing, complete WAVs of the same plan are kept.
    hours : float
        Total audio over all splits (80/10/10); fractional values work.
    seed : int
        Seed of everything; same seed → same corpus, byte for byte.
    workers : int, optional
        Worker processes (default: the CPUs available). eSpeak NG is process-global, so each
        worker owns its own engine; 1 renders in this process.
    progress : bool
        Show a tqdm progress bar.
    word_sequences : float
        Fraction of the training utterances that are random word sequences (see
        :func:`plan_corpus`).

    Returns
    -------
    dict
        The content of ``out_dir/corpus.json`` plus ``"run"``: utterances synthesized and
        skipped, wall seconds, and speed (audio seconds per wall second, utterances per second).
    """
    if workers is None:
        workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CorpusError(f"workers must be a positive int, got {workers!r}")
    out = Path(out_dir)
    wav_dir = out / "wav"
    try:
        wav_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CorpusError(f"cannot create {wav_dir}: {e.strerror}") from None
    start = time.perf_counter()
    voices = available_voices()
    plan = plan_corpus(hours=hours, seed=seed, voices=voices, word_sequences=word_sequences)
    for stale in wav_dir.glob("*.tmp-*"):  # left by an interrupted run
        stale.unlink(missing_ok=True)

    durations: dict[str, float] = {}
    todo: list[Utterance] = []
    for split in SPLITS:
        for utt in plan[split]:
            d = _wav_duration(wav_dir / f"{utt.id}.wav")
            if d is None:
                todo.append(utt)
            else:
                durations[utt.id] = d
    skipped = len(durations)

    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), unit="utt", desc="synthesizing", dynamic_ncols=True)
    synth_start = time.perf_counter()
    jobs = [(utt, str(wav_dir)) for utt in todo]
    try:
        if workers == 1 or len(todo) <= 1:
            with Synthesizer() as synth:
                for utt, wdir in jobs:
                    uid, d = _render_to_file(synth, utt, wdir)
                    durations[uid] = d
                    if bar is not None:
                        bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            pool = ctx.Pool(min(workers, len(todo)), initializer=_worker_init)
            try:
                chunk = max(1, min(16, len(jobs) // (8 * workers)))
                for uid, d in pool.imap_unordered(_worker_job, jobs, chunksize=chunk):
                    durations[uid] = d
                    if bar is not None:
                        bar.update(1)
                pool.close()  # workers exit normally and stop their engines
            except BaseException:
                pool.terminate()
                raise
            finally:
                pool.join()
    finally:
        if bar is not None:
            bar.close()
    synth_wall = time.perf_counter() - synth_start

    # through JSON and back, so the returned dict equals what corpus.json holds (lists, not tuples)
    summary = _summary(plan, durations, seed=seed, hours=hours, voices=voices)
    if word_sequences:   # recorded only when used: corpora without them keep their corpus.json
        summary["parameters"]["word_sequences"] = word_sequences
    summary = json.loads(json.dumps(summary))
    for split in SPLITS:
        rows = [json.dumps(_manifest_row(u, durations[u.id])) for u in plan[split]]
        _write_text_atomic(out / f"{split}.jsonl", "".join(r + "\n" for r in rows))
    _write_text_atomic(out / "corpus.json", json.dumps(summary, indent=2) + "\n")
    synthesized_audio = sum(durations[u.id] for u in todo)
    summary["run"] = {
        "out_dir": str(out), "synthesized": len(todo), "skipped": skipped, "workers": workers,
        "wall_seconds": round(time.perf_counter() - start, 3),
        "synthesis_wall_seconds": round(synth_wall, 3),
        "audio_seconds_per_wall_second": round(synthesized_audio / synth_wall, 1) if todo else None,
        "utterances_per_second": round(len(todo) / synth_wall, 1) if todo else None,
    }
    return summary


def _summary(plan: dict[str, list[Utterance]], durations: dict[str, float], *, seed: int,
             hours: float, voices: dict) -> dict:
    held = heldout_templates(seed)
    splits = {}
    for split in SPLITS:
        items = plan[split]
        secs = sum(durations[u.id] for u in items)
        splits[split] = {
            "utterances": len(items),
            "hours": round(secs / 3600.0, 5),
            "seconds": round(secs, 2),
            "estimated_seconds": round(sum(u.estimated_duration for u in items), 2),
            "heldout_utterances": sum(u.heldout for u in items),
            "templates": len({u.template for u in items}),
            "voices": len({u.voice for u in items}),
            "noise": dict(sorted(Counter(u.noise for u in items).items())),
        }
    total = sum(s["seconds"] for s in splits.values())
    return {
        "format": 1,
        "seed": seed,
        "hours_requested": hours,
        "hours": round(total / 3600.0, 5),
        "sample_rate": SAMPLE_RATE,
        "splits": splits,
        "parameters": {
            "split_fractions": SPLIT_FRACTIONS,
            "heldout_template_fraction": HELDOUT_TEMPLATE_FRACTION,
            "heldout_share": HELDOUT_SHARE, "variant_fractions": VARIANT_FRACTIONS,
            "speed_range": SPEED_RANGE, "pitch_limits": PITCH_LIMITS, "snr_db_range": SNR_DB_RANGE,
            "clean_fraction": CLEAN_FRACTION, "noise_kinds": NOISE_KINDS,
            "silence_range": SILENCE_RANGE, "level_db_range": LEVEL_DB_RANGE,
            "render_version": RENDER_VERSION,
        },
        "templates": {"total": len(templates()), "heldout": sorted(held)},
        "voices": {
            "languages": sorted(voices["languages"]),
            "variants": len(voices["variants"]),
            "excluded_variants": EXCLUDED_VARIANTS,
            "splits": voice_splits(seed, voices=voices),
        },
        "versions": _versions(voices["version"]),
    }


# -- examples ---------------------------------------------------------------------------------

#: Example utterances: this long (estimated seconds) at most, at least this many from templates
#: held out of training.
EXAMPLE_MAX_SECONDS = 4.5
EXAMPLE_MIN_HELDOUT = 2


def plan_examples(count: int = 8, *, seed: int = 0, voices: dict | None = None
                  ) -> list[Utterance]:
    """The example utterances: the first ``count`` of the corpus's *test* split (so unseen
    voices and sentences, the same utterances as ``test.jsonl`` of any corpus made with this
    seed) that are at most :data:`EXAMPLE_MAX_SECONDS` long, with one intent each as long as
    that is possible and at least :data:`EXAMPLE_MIN_HELDOUT` from held-out templates.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
        raise CorpusError(f"count must be an int from 1 to 50, got {count!r}")
    test = plan_corpus(hours=max(0.5, count / 40), seed=seed, voices=voices)["test"]
    short = [u for u in test if u.estimated_duration <= EXAMPLE_MAX_SECONDS]
    need_held = min(EXAMPLE_MIN_HELDOUT, count)
    chosen: list[Utterance] = []
    for u in short:                                # held-out templates first, distinct intents
        if len(chosen) < need_held and u.heldout and u.intent not in {c.intent for c in chosen}:
            chosen.append(u)
    for u in short:                                # then one per intent, in test order
        if len(chosen) < count and u not in chosen \
                and u.intent not in {c.intent for c in chosen}:
            chosen.append(u)
    for u in short:                                # then anything
        if len(chosen) < count and u not in chosen:
            chosen.append(u)
    if len(chosen) < count:
        raise CorpusError(f"only {len(chosen)} test utterances are short enough for examples")
    return sorted(chosen, key=lambda u: u.id)


def make_examples(out_dir, *, count: int = 8, seed: int = 0) -> list[dict]:
    """Synthesize :func:`plan_examples` into ``out_dir``: ``NN-intent.wav`` each, and
    ``manifest.jsonl`` (a corpus manifest, so ``zeroskip eval --manifest`` reads it) plus
    ``transcripts.txt`` (``file<TAB>text``). Byte-deterministic; returns the manifest rows.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CorpusError(f"cannot create {out}: {e.strerror}") from None
    rows = []
    with Synthesizer() as synth:
        for n, utt in enumerate(plan_examples(count, seed=seed), 1):
            name = f"{n:02d}-{utt.intent}.wav"
            audio = synth.render(utt).audio
            _write_wav(out / name, audio)
            row = _manifest_row(utt, audio.size / SAMPLE_RATE)
            row["audio"] = name
            rows.append(row)
    _write_text_atomic(out / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write_text_atomic(out / "transcripts.txt",
                       "".join(f"{r['audio']}\t{r['text']}\n" for r in rows))
    return rows
