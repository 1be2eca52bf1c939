"""Tests of model/corpus.py: templates, the sentence and voice plan (split disjointness, held-out
templates, determinism), noise and rendering against naive models, and a real tiny corpus."""

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_equal

from model.corpus import (CLEAN_FRACTION, EXCLUDED_VARIANTS, HELDOUT_TEMPLATE_FRACTION,
                          MANIFEST_KEYS, NOISE_KINDS, PITCH_LIMITS, SILENCE_RANGE, SNR_DB_RANGE,
                          SPEED_RANGE, SPLIT_FRACTIONS, SPLITS, CorpusError, Synthesizer,
                          Utterance, available_voices, estimate_duration, generate_corpus,
                          heldout_templates, make_noise, plan_corpus, read_manifest, render,
                          sentences, speech_text, templates, training_vocabulary,
                          voice_splits, WORDS_PER_SEQUENCE)
from model.corpus_data import SLOTS, TEMPLATES
from model.text import is_normalized, normalize

SR = 16000


@pytest.fixture(scope="module")
def voices():
    return available_voices()


@pytest.fixture(scope="module")
def plan(voices):
    return plan_corpus(hours=0.5, seed=3, voices=voices)


def variant_of(voice: str) -> str:
    return voice.partition("+")[2]


def wav_samples(path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


# -- templates and slots ------------------------------------------------------------------------

def test_templates_are_many_and_parse():
    ts = templates()
    assert len(ts) >= 80
    assert len({t.id for t in ts}) == len(ts)
    for intent, patterns in TEMPLATES.items():
        assert len(patterns) >= 6, intent
    assert {t.intent for t in ts} >= {"call", "message", "device", "timer", "alarm", "reminder",
                                       "weather", "music", "playback", "shopping", "question"}


@pytest.mark.parametrize("pattern, message", [
    ("call {nobody}", "unknown slot"), ("(call|phone {first}", "without"),
    ("[please call", "without"), ("call] me", "unexpected"), ("call {first", "stray"),
])
def test_bad_templates_are_refused(monkeypatch, pattern, message):
    import model.corpus as corpus
    monkeypatch.setitem(corpus.TEMPLATES, "call", [pattern])
    corpus.templates.cache_clear()
    try:
        with pytest.raises(CorpusError, match=message):
            corpus.templates()
    finally:
        monkeypatch.undo()
        corpus.templates.cache_clear()


def test_slot_lists_are_large_plain_and_normalized():
    minimum = {"first": 300, "last": 300, "city": 250, "item": 200, "artist": 150, "device": 30,
               "room": 30, "genre": 40, "country": 100, "task": 50}
    for name, size in minimum.items():
        assert len(SLOTS[name]) >= size, name
    for name, values in SLOTS.items():
        assert len(set(values)) == len(values), name
        for v in values:
            assert normalize(v) == v, (name, v)


def test_heldout_templates_per_intent():
    held = heldout_templates(3)
    assert held == heldout_templates(3)
    assert held != heldout_templates(4)
    for intent, patterns in TEMPLATES.items():
        k = sum(1 for t in held if t.startswith(intent + "."))
        assert k == max(1, round(HELDOUT_TEMPLATE_FRACTION * len(patterns))), intent


# -- voices -----------------------------------------------------------------------------------

def test_voice_splits_are_disjoint_and_cover_the_voices(voices):
    vs = voice_splits(3, voices=voices)
    sets = {s: set(vs[s]) for s in SPLITS}
    variants = {s: {variant_of(v) for v in vs[s]} - {""} for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not sets[a] & sets[b]
                assert not variants[a] & variants[b]  # speakers of dev/test never heard in training
    gender = dict(voices["variants"])
    usable = {n for n in gender if n not in EXCLUDED_VARIANTS}
    assert variants["train"] | variants["dev"] | variants["test"] == usable
    for s in ("dev", "test"):
        assert {gender[v] for v in variants[s]} == {"male", "female"}
        assert len(variants[s]) >= 10
    languages = set(voices["languages"])
    assert len(languages) == 8
    for s in SPLITS:
        assert {v.partition("+")[0] for v in vs[s]} == languages
    assert languages <= sets["train"]
    assert voice_splits(3, voices=voices) == vs and voice_splits(4, voices=voices) != vs


# -- the plan ---------------------------------------------------------------------------------

def test_plan_sizes_follow_hours(plan):
    for split in SPLITS:
        est = sum(u.estimated_duration for u in plan[split])
        target = 0.5 * 3600 * SPLIT_FRACTIONS[split]
        assert target <= est < target + max(u.estimated_duration for u in plan[split])


def test_plan_sentences_are_disjoint_between_splits(plan):
    texts = {s: {u.text for u in plan[s]} for s in SPLITS}
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]


def test_plan_voices_belong_to_their_split(plan, voices):
    vs = voice_splits(3, voices=voices)
    for s in SPLITS:
        assert {u.voice for u in plan[s]} <= set(vs[s])
    assert len({u.voice for u in plan["train"]}) > 100


def test_plan_heldout_templates_only_outside_training(plan):
    held = heldout_templates(3)
    assert not any(u.heldout or u.template in held for u in plan["train"])
    for s in ("dev", "test"):
        share = sum(u.heldout for u in plan[s]) / len(plan[s])
        assert 0.15 < share < 0.55, (s, share)
        assert all(u.heldout == (u.template in held) for u in plan[s])


def test_plan_utterances_are_consistent(plan):
    ids = [u.id for s in SPLITS for u in plan[s]]
    assert len(set(ids)) == len(ids)
    by_id = {t.id: t for t in templates()}
    for s in SPLITS:
        for i, u in enumerate(plan[s]):
            assert u.split == s and u.id.startswith(f"{s}-{i:06d}-")
            assert is_normalized(u.text) and u.text
            assert by_id[u.template].intent == u.intent
            assert SPEED_RANGE[0] <= u.speed <= SPEED_RANGE[1]
            assert PITCH_LIMITS["pitch"][0] <= u.pitch <= PITCH_LIMITS["pitch"][1]
            assert PITCH_LIMITS["pitch_range"][0] <= u.pitch_range <= PITCH_LIMITS["pitch_range"][1]
            assert SILENCE_RANGE[0] <= u.lead <= SILENCE_RANGE[1]
            assert SILENCE_RANGE[0] <= u.trail <= SILENCE_RANGE[1]
            assert (u.noise == "none") == (u.snr_db is None)
            assert u.noise == "none" or SNR_DB_RANGE[0] <= u.snr_db <= SNR_DB_RANGE[1]
            assert u.speech_text.replace(" AM", " a m") == u.text
    every = [u for s in SPLITS for u in plan[s]]
    clean = sum(u.noise == "none" for u in every) / len(every)
    assert abs(clean - CLEAN_FRACTION) < 0.05
    assert {u.noise for u in every} == set(NOISE_KINDS) | {"none"}
    assert len({u.template for u in every}) > 0.8 * len(templates())


def test_plan_is_deterministic_and_extends(voices):
    small = plan_corpus(hours=0.03, seed=9, voices=voices)
    assert plan_corpus(hours=0.03, seed=9, voices=voices) == small
    big = plan_corpus(hours=0.08, seed=9, voices=voices)
    for s in SPLITS:
        assert big[s][:len(small[s])] == small[s]
        assert len(big[s]) > len(small[s])
    other = plan_corpus(hours=0.03, seed=10, voices=voices)
    assert [u.text for u in other["train"]] != [u.text for u in small["train"]]


def test_plan_refuses_bad_arguments(voices):
    for hours in (0, -1, float("nan"), "1"):
        with pytest.raises(CorpusError, match="hours must be a positive number"):
            plan_corpus(hours=hours, voices=voices)
    with pytest.raises(CorpusError, match="seed must be an int"):
        plan_corpus(hours=0.01, seed=1.5, voices=voices)


def test_word_sequences_only_change_training(voices, plan):
    assert plan_corpus(hours=0.5, seed=3, voices=voices, word_sequences=0.0) == plan
    mixed = plan_corpus(hours=0.5, seed=3, voices=voices, word_sequences=0.4)
    for split in ("dev", "test"):
        assert mixed[split] == plan[split]
    words = [u for u in mixed["train"] if u.template == "words.0"]
    assert 0.25 < len(words) / len(mixed["train"]) < 0.55
    vocab = set(training_vocabulary(3))
    others = {u.text for s in ("dev", "test") for u in plan[s]}
    for u in words:
        n = len(u.text.split())
        assert WORDS_PER_SEQUENCE[0] <= n <= WORDS_PER_SEQUENCE[1]
        assert set(u.text.split()) <= vocab and is_normalized(u.text)
        assert (u.intent, u.heldout, u.split) == ("words", False, "train")
        assert u.text not in others
    # the vocabulary is the training split's: no word that only dev or test sentences use
    dev_test_only = ({w for s in ("dev", "test") for u in plan[s] for w in u.text.split()}
                     - {w for _, t in sentences(20000, seed=3, split="train") for w in t.split()})
    assert dev_test_only and not dev_test_only & vocab
    for bad in (-0.1, 1.0, "0.2", True):
        with pytest.raises(CorpusError, match="word_sequences must be a fraction"):
            plan_corpus(hours=0.01, voices=voices, word_sequences=bad)


def test_tiny_hours_give_at_least_one_utterance_per_split(voices):
    p = plan_corpus(hours=1e-6, voices=voices)
    assert all(len(p[s]) == 1 for s in SPLITS)


def test_sentences_respect_splits():
    train = sentences(300, seed=3, split="train")
    test = sentences(300, seed=3, split="test")
    assert sentences(300, seed=3, split="train") == train
    held = heldout_templates(3)
    assert not any(t in held for t, _ in train)
    assert any(t in held for t, _ in test)
    assert not {x for _, x in train} & {x for _, x in test}
    with pytest.raises(CorpusError, match="unknown split 'valid'"):
        sentences(1, split="valid")


def test_speech_text_only_spells_out_am():
    assert speech_text("set an alarm for seven a m") == "set an alarm for seven AM"
    assert speech_text("wake me at six fifteen a m today") == "wake me at six fifteen AM today"
    assert speech_text("at seven thirty p m") == "at seven thirty p m"
    assert speech_text("a man with a map") == "a man with a map"
    assert speech_text("add a m") == "add a m"


def test_estimate_duration():
    assert estimate_duration("set a timer", 130) > estimate_duration("set a timer", 230)
    assert estimate_duration("set a timer for ten minutes", 175) > \
        estimate_duration("set a timer", 175)


# -- noise and rendering ------------------------------------------------------------------------

def loglog_slope(x: np.ndarray, lo=50.0, hi=4000.0) -> float:
    """Slope of log power versus log frequency of ``x``'s averaged periodogram (the naive way)."""
    frames = x[: x.size // 1024 * 1024].reshape(-1, 1024)
    power = (np.abs(np.fft.rfft(frames * np.hanning(1024), axis=1)) ** 2).mean(0)
    f = np.fft.rfftfreq(1024, 1 / SR)
    m = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log(f[m]), np.log(power[m]), 1)[0])


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_coloured_noise_spectra(kind, slope):
    x = make_noise(kind, 5 * SR, np.random.default_rng(1))
    assert np.sqrt(np.mean(x ** 2)) == pytest.approx(1.0)
    assert loglog_slope(x) == pytest.approx(slope, abs=0.25)


def test_babble_and_hum():
    b = make_noise("babble", 5 * SR, np.random.default_rng(2))
    spec = np.abs(np.fft.rfft(b)) ** 2
    f = np.fft.rfftfreq(b.size, 1 / SR)
    assert spec[(f > 100) & (f < 1500)].sum() > 0.7 * spec.sum()  # speech-shaped
    env = np.sqrt(np.convolve(b ** 2, np.ones(320) / 320, "valid"))[::160]  # 10 ms envelope
    assert env.std() / env.mean() > 0.3  # strongly modulated, unlike stationary noise
    h = make_noise("hum", 2 * SR, np.random.default_rng(3))
    spec = np.abs(np.fft.rfft(h)) ** 2
    f = np.fft.rfftfreq(h.size, 1 / SR)
    harmonics = np.zeros_like(f, bool)
    for f0 in (50, 60):
        for k in range(1, 10):
            harmonics |= np.abs(f - k * f0) < 1.0
    assert spec[harmonics].sum() > 0.9 * spec.sum()


def test_noise_is_deterministic_and_checked():
    for kind in NOISE_KINDS:
        assert_equal(make_noise(kind, 4001, np.random.default_rng(5)),
                     make_noise(kind, 4001, np.random.default_rng(5)))
    assert make_noise("pink", 0, np.random.default_rng(0)).size == 0
    with pytest.raises(CorpusError, match="unknown noise kind 'rain'"):
        make_noise("rain", 10, np.random.default_rng(0))


def fake_utterance(**kw) -> Utterance:
    base = dict(id="x", split="train", text="hello", speech_text="hello", template="call.00",
                intent="call", heldout=False, voice="en-us", speed=175, pitch=50, pitch_range=50,
                noise="pink", snr_db=10.0, lead=0.25, trail=0.125, level_db=-20.0, seed=7,
                estimated_duration=1.0)
    base.update(kw)
    return Utterance(**base)


def fake_raw(seconds=1.0) -> np.ndarray:
    """A 22050 Hz int16 'utterance': 0.1 s of zeros, a warbling tone, 0.2 s of zeros."""
    t = np.arange(int(seconds * 22050)) / 22050
    tone = 8000 * np.sin(2 * np.pi * (200 + 50 * np.sin(2 * np.pi * 3 * t)) * t)
    return np.concatenate([np.zeros(2205), tone, np.zeros(4410)]).astype(np.int16)


@pytest.mark.parametrize("noise, snr", [("pink", 10.0), ("white", 25.0), ("babble", 5.0),
                                        ("hum", 17.5), ("brown", 30.0)])
def test_render_mixes_at_the_requested_snr(noise, snr):
    utt = fake_utterance(noise=noise, snr_db=snr)
    r = render(utt, fake_raw())
    assert r.audio.dtype == np.int16
    assert_equal(r.audio, np.clip(np.round(32767 * (r.speech + r.noise)), -32768, 32767))
    assert r.snr_db == pytest.approx(snr, abs=1e-6)
    start, stop = r.span
    assert start == round(0.25 * SR) and r.audio.size - stop == round(0.125 * SR)
    assert not r.speech[:start].any() and not r.speech[stop:].any()
    # eSpeak's own silence is trimmed: the tone lasts 1 s (+ 2 x 10 ms of margin)
    assert (stop - start) / SR == pytest.approx(1.0 + 0.02, abs=0.005)
    rms = np.sqrt(np.mean(r.speech[start:stop] ** 2))
    assert 20 * np.log10(rms) == pytest.approx(-20.0, abs=1e-6)
    assert_equal(render(utt, fake_raw()).audio, r.audio)


def test_render_clean_and_peak_limited():
    clean = render(fake_utterance(noise="none", snr_db=None), fake_raw())
    assert not clean.noise.any() and clean.snr_db == math.inf
    loud = render(fake_utterance(level_db=-1.0, noise="white", snr_db=5.0), fake_raw())
    assert np.max(np.abs(loud.speech + loud.noise)) == pytest.approx(0.98)
    assert loud.snr_db == pytest.approx(5.0, abs=1e-6)
    with pytest.raises(CorpusError, match="silence"):
        render(fake_utterance(), np.zeros(1000, np.int16))


# -- manifests --------------------------------------------------------------------------------

def test_read_manifest_errors(tmp_path):
    with pytest.raises(CorpusError, match="cannot read manifest .* `zeroskip corpus"):
        read_manifest(tmp_path / "nope.jsonl")
    row = {k: 1 for k in MANIFEST_KEYS} | {"audio": "wav/a.wav"}
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n\n{oops\n")
    with pytest.raises(CorpusError, match=r"m.jsonl:3: not JSON"):
        read_manifest(tmp_path / "m.jsonl")
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "audio": "x"}) + "\n")
    with pytest.raises(CorpusError, match=r"m.jsonl:1: missing text, duration"):
        read_manifest(tmp_path / "m.jsonl")
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n")
    assert read_manifest(tmp_path / "m.jsonl")[0]["audio"] == str(tmp_path.resolve() / "wav/a.wav")


def test_generate_refuses_bad_arguments(tmp_path):
    with pytest.raises(CorpusError, match="workers must be a positive int"):
        generate_corpus(tmp_path / "c", hours=0.001, workers=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(CorpusError, match="cannot create"):
        generate_corpus(tmp_path / "file", hours=0.001, workers=1)
    with pytest.raises(CorpusError, match="hours must be a positive number"):
        generate_corpus(tmp_path / "c", hours=-1, workers=1)


# -- a real tiny corpus -------------------------------------------------------------------------

HOURS, SEED = 0.002, 5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    summary = generate_corpus(out, hours=HOURS, seed=SEED, workers=1, progress=False)
    return out, summary


def test_corpus_files_and_manifests(corpus):
    out, summary = corpus
    assert json.loads((out / "corpus.json").read_text()) == {k: v for k, v in summary.items()
                                                             if k != "run"}
    total = 0.0
    for split in SPLITS:
        rows = read_manifest(out / f"{split}.jsonl")
        assert len(rows) == summary["splits"][split]["utterances"] >= 1
        for row in rows:
            assert list(row)[:len(MANIFEST_KEYS)] == list(MANIFEST_KEYS)
            assert row["split"] == split and is_normalized(row["text"])
            path = Path(row["audio"])
            assert path.is_absolute() and path == out.resolve() / "wav" / f"{row['id']}.wav"
            audio = wav_samples(path)
            assert audio.size / SR == pytest.approx(row["duration"], abs=1e-4)
            rms_db = 20 * np.log10(np.sqrt(np.mean((audio / 32768.0) ** 2)))
            assert -45 < rms_db < -10  # speech, not silence, not clipping
            total += row["duration"]
    assert 0.4 * HOURS * 3600 < total < 3 * HOURS * 3600
    assert summary["hours"] == pytest.approx(total / 3600, abs=1e-4)
    assert summary["run"]["synthesized"] == sum(summary["splits"][s]["utterances"] for s in SPLITS)


def test_corpus_audio_is_the_plan_rendered(corpus):
    """Each WAV is exactly its planned rendering, and its SNR, measured from the file alone
    (noise power from the added silences), is roughly the requested one."""
    out, _ = corpus
    plan = plan_corpus(hours=HOURS, seed=SEED)
    with Synthesizer() as synth:
        for split in SPLITS:
            for utt in plan[split]:
                audio = wav_samples(out / "wav" / f"{utt.id}.wav")
                r = synth.render(utt)
                assert_equal(audio, r.audio)
                if utt.noise == "none":
                    continue
                assert r.snr_db == pytest.approx(utt.snr_db, abs=1e-6)
                x = audio / 32768.0
                start, stop = r.span
                p_noise = np.mean(np.concatenate([x[:start], x[stop:]]) ** 2)
                p_speech = np.mean(x[start:stop] ** 2) - p_noise
                measured = 10 * np.log10(max(p_speech, 1e-12) / p_noise)
                # babble pauses at random, so its power in the silences is a rough estimate
                tolerance = 5.0 if utt.noise == "babble" else 1.0
                assert measured == pytest.approx(utt.snr_db, abs=tolerance), (utt.noise, measured)


def test_rerun_skips_and_repairs(corpus, tmp_path):
    out, summary = corpus
    again = generate_corpus(out, hours=HOURS, seed=SEED, workers=1, progress=False)
    n = summary["run"]["synthesized"]
    assert again["run"]["skipped"] == n and again["run"]["synthesized"] == 0
    wavs = sorted((out / "wav").glob("*.wav"))
    original = {p.name: p.read_bytes() for p in wavs}
    # an interrupted run: one file truncated, one missing, a temporary file left over
    wavs[0].write_bytes(original[wavs[0].name][:1000])
    wavs[-1].unlink()
    (out / "wav" / "x.wav.tmp-1234").write_bytes(b"partial")
    repaired = generate_corpus(out, hours=HOURS, seed=SEED, workers=1, progress=False)
    assert repaired["run"]["synthesized"] == 2 and repaired["run"]["skipped"] == n - 2
    assert {p.name: p.read_bytes() for p in (out / "wav").glob("*.wav")} == original
    assert not list((out / "wav").glob("*.tmp-*"))


def test_parallel_workers_give_the_same_bytes(corpus, tmp_path):
    out, _ = corpus
    other = tmp_path / "parallel"
    generate_corpus(other, hours=HOURS, seed=SEED, workers=2, progress=False)
    for name in [f"{s}.jsonl" for s in SPLITS] + ["corpus.json"]:
        assert (other / name).read_bytes() == (out / name).read_bytes(), name
    mine = {p.name: p.read_bytes() for p in (out / "wav").glob("*.wav")}
    theirs = {p.name: p.read_bytes() for p in (other / "wav").glob("*.wav")}
    assert mine == theirs
