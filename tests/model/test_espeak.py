"""Tests of model/espeak.py: the eSpeak NG binding, its voices and its determinism."""

import numpy as np
import pytest
from numpy.testing import assert_equal

from model.espeak import ESPEAK_SAMPLE_RATE, Espeak, EspeakError

ENGLISH = {"en", "en-us", "en-us-nyc", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029"}


@pytest.fixture(scope="module")
def engine():
    with Espeak() as e:
        yield e


def test_voices(engine):
    assert {v.name for v in engine.languages()} == ENGLISH
    assert engine.sample_rate == ESPEAK_SAMPLE_RATE == 22050
    variants = {v.name: v for v in engine.variants()}
    assert len(variants) >= 90
    assert variants["f3"].gender == "female" and variants["m3"].gender == "male"
    assert {"klatt", "klatt4", "Annie", "m1", "f1"} <= set(variants)


def test_speech_is_speech(engine):
    a = engine.synthesize("turn on the kitchen lights", "en-us")
    assert a.dtype == np.int16 and a.ndim == 1
    assert 0.8 < a.size / ESPEAK_SAMPLE_RATE < 3.0
    assert np.abs(a.astype(np.int32)).max() > 3000


def test_same_request_same_samples_whatever_came_before(engine):
    """eSpeak keeps state between utterances; the forked synthesis must not see it."""
    first = engine.synthesize("set a timer for five minutes", "en-gb-x-rp+f1", rate=190,
                              pitch=60, pitch_range=30, seed=11)
    engine.synthesize("something different in between", "en-029+klatt", seed=3)
    engine.synthesize("and another one", "en-us+m7", rate=120, seed=4)
    again = engine.synthesize("set a timer for five minutes", "en-gb-x-rp+f1", rate=190,
                              pitch=60, pitch_range=30, seed=11)
    assert_equal(again, first)
    with Espeak() as other:
        assert_equal(other.synthesize("set a timer for five minutes", "en-gb-x-rp+f1", rate=190,
                                      pitch=60, pitch_range=30, seed=11), first)


def test_parameters_change_the_audio(engine):
    slow = engine.synthesize("what is the weather in boston", "en-us", rate=120)
    fast = engine.synthesize("what is the weather in boston", "en-us", rate=260)
    assert slow.size > 1.6 * fast.size
    low = engine.synthesize("what is the weather in boston", "en-us", pitch=20)
    high = engine.synthesize("what is the weather in boston", "en-us", pitch=80)
    assert low.size == pytest.approx(high.size, rel=0.05) and not np.array_equal(low, high)
    variant = engine.synthesize("what is the weather in boston", "en-us+f3")
    plain = engine.synthesize("what is the weather in boston", "en-us")
    assert not np.array_equal(variant[:plain.size], plain[:variant.size])


@pytest.mark.parametrize("voice, message", [
    ("xx", "unknown eSpeak language voice 'xx'"),
    ("en-gb", "unknown eSpeak language voice 'en-gb'.*en-gb-x-rp"),
    ("en-us+nope", "unknown eSpeak voice variant 'nope'.*klatt"),
])
def test_unknown_voices_are_refused(engine, voice, message):
    with pytest.raises(EspeakError, match=message):
        engine.synthesize("hello", voice)


def test_bad_parameters_are_refused(engine):
    with pytest.raises(EspeakError, match="rate 50 is outside"):
        engine.synthesize("hello", rate=50)
    with pytest.raises(EspeakError, match="pitch 101 is outside"):
        engine.synthesize("hello", pitch=101)
    with pytest.raises(EspeakError, match="nothing to say"):
        engine.synthesize("  ")


def test_closed_engine():
    e = Espeak()
    e.close()
    e.close()
    with pytest.raises(EspeakError, match="closed"):
        e.synthesize("hello")


def test_bad_paths(tmp_path):
    with pytest.raises(EspeakError, match="not an espeak-ng-data directory"):
        Espeak(data=str(tmp_path))
    with pytest.raises(EspeakError, match="no eSpeak NG library"):
        Espeak(library=str(tmp_path / "libespeak-ng.so"))


def test_unusable_data_is_reported(tmp_path):
    """Data that passes the quick check but that eSpeak cannot load: the server says so."""
    (tmp_path / "phontab").write_bytes(b"")
    with pytest.raises(EspeakError, match="failed to start|exited unexpectedly"):
        Espeak(data=str(tmp_path))
