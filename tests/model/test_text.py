"""Tests of model/text.py: vocabulary, number spelling and normalization against hand-written
expectations and a deliberately naive spelling model."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from model.text import (BLANK, VOCAB, decode, encode, is_normalized, normalize, spell_decimal,
                        spell_digits, spell_number, spell_ordinal, spell_time)

# -- naive golden model: a table of every word, assembled left to right -------------------------

WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty",
        9: "ninety"}


def naive_spell(n: int) -> str:
    """Group the digits in threes from the right and name each group, the schoolbook way."""
    if n == 0:
        return "zero"
    if n < 0:
        return "minus " + naive_spell(-n)
    digits = str(n)
    groups = []
    while digits:
        groups.insert(0, int(digits[-3:]))
        digits = digits[:-3]
    names = ["", "thousand", "million", "billion", "trillion"]
    parts = []
    for i, g in enumerate(groups):
        scale = names[len(groups) - 1 - i]
        if g == 0:
            continue
        words = []
        if g >= 100:
            words += [WORDS[g // 100], "hundred"]
        r = g % 100
        if r >= 20:
            words.append(TENS[r // 10])
            if r % 10:
                words.append(WORDS[r % 10])
        elif r:
            words.append(WORDS[r])
        parts.append(" ".join(words + ([scale] if scale else [])))
    return " ".join(parts)


# -- vocabulary ---------------------------------------------------------------------------------

def test_vocab_layout():
    assert len(VOCAB) == 29 and BLANK == 0 and VOCAB[0] == "<blank>"
    assert VOCAB[1:3] == [" ", "'"]
    assert "".join(VOCAB[3:]) == "abcdefghijklmnopqrstuvwxyz"


def test_encode_decode_round_trip_and_ids():
    text = "it's seven thirty p m"
    ids = encode(text)
    assert all(1 <= i <= 28 for i in ids)
    assert ids[:4] == [VOCAB.index("i"), VOCAB.index("t"), 2, VOCAB.index("s")]
    assert decode(ids) == text


def test_decode_skips_blanks_and_takes_arrays():
    ids = [0, 10, 0, 0, 11, 0]
    assert decode(ids) == "hi"
    assert decode(np.array(ids)) == "hi"
    assert decode(torch.tensor(ids)) == "hi"


def test_encode_refuses_unnormalized_text():
    with pytest.raises(ValueError, match=r"'S' at position 0 .* normalize"):
        encode("Seven")
    with pytest.raises(ValueError, match="'7' at position 4"):
        encode("set 7")


def test_decode_refuses_out_of_range_ids():
    with pytest.raises(ValueError, match="id 29 at position 1"):
        decode([3, 29])
    with pytest.raises(ValueError, match="id -1"):
        decode([-1])


# -- numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (19, "nineteen"), (20, "twenty"),
    (21, "twenty one"), (40, "forty"), (99, "ninety nine"), (100, "one hundred"),
    (101, "one hundred one"), (110, "one hundred ten"), (999, "nine hundred ninety nine"),
    (1000, "one thousand"), (1005, "one thousand five"), (1100, "one thousand one hundred"),
    (2024, "two thousand twenty four"), (10000, "ten thousand"),
    (12345, "twelve thousand three hundred forty five"), (1000000, "one million"),
    (1000001, "one million one"), (2000000001, "two billion one"), (-3, "minus three"),
])
def test_spell_number_by_hand(n, words):
    assert spell_number(n) == words


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=-(10 ** 15) + 1, max_value=10 ** 15 - 1))
def test_spell_number_matches_naive_model(n):
    assert spell_number(n) == naive_spell(n)


def test_spell_number_errors():
    with pytest.raises(TypeError, match="needs an int"):
        spell_number(3.0)
    with pytest.raises(TypeError):
        spell_number(True)
    with pytest.raises(ValueError, match="spell_digits"):
        spell_number(10 ** 15)


@pytest.mark.parametrize("n, words", [
    (0, "zeroth"), (1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth"),
    (8, "eighth"), (9, "ninth"), (11, "eleventh"), (12, "twelfth"), (13, "thirteenth"),
    (20, "twentieth"), (21, "twenty first"), (22, "twenty second"), (23, "twenty third"),
    (40, "fortieth"), (100, "one hundredth"), (101, "one hundred first"),
    (1000, "one thousandth"), (1005, "one thousand fifth"),
])
def test_spell_ordinal(n, words):
    assert spell_ordinal(n) == words


def test_spell_digits_and_decimal():
    assert spell_digits("007") == "zero zero seven"
    assert spell_decimal("3.5") == "three point five"
    assert spell_decimal("0.25") == "zero point two five"
    assert spell_decimal(".5") == "zero point five"
    assert spell_decimal("1,250.75") == "one thousand two hundred fifty point seven five"
    with pytest.raises(ValueError):
        spell_digits("12a")


@pytest.mark.parametrize("args, words", [
    ((7, 30, "pm"), "seven thirty p m"), ((7, 5), "seven oh five"), ((7, 0, "am"), "seven a m"),
    ((7,), "seven o'clock"), ((12, 0), "twelve o'clock"), ((0, 15), "zero fifteen"),
    ((14, 0), "fourteen hundred"), ((13, 45), "thirteen forty five"), ((0, 30, "am"),
                                                                     "twelve thirty a m"),
    ((11, 59, "p.m."), "eleven fifty nine p m"), ((9, 10, "AM"), "nine ten a m"),
])
def test_spell_time(args, words):
    assert spell_time(*args) == words


def test_spell_time_errors():
    with pytest.raises(ValueError, match="outside 0-12"):
        spell_time(13, 0, "pm")
    with pytest.raises(ValueError, match="minute 60"):
        spell_time(1, 60)
    with pytest.raises(ValueError, match="meridiem"):
        spell_time(1, 0, "xm")


# -- normalize --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, norm", [
    ("Set an alarm for 7:30 PM, please!", "set an alarm for seven thirty p m please"),
    ("wake me at 6am", "wake me at six a m"),
    ("at 7:00 am", "at seven a m"),
    ("at 7:00", "at seven o'clock"),
    ("at 9:05 p.m. today", "at nine oh five p m today"),
    ("at 14:00", "at fourteen hundred"),
    ("Dim the lights to 40%", "dim the lights to forty percent"),
    ("it is 72°F", "it is seventy two degrees fahrenheit"),
    ("-5 degrees", "minus five degrees"),
    ("$3.50 and $1", "three dollars fifty cents and one dollar"),
    ("the 21st of march", "the twenty first of march"),
    ("my 100th visit", "my one hundredth visit"),
    ("1005 items", "one thousand five items"),
    ("1,250 people", "one thousand two hundred fifty people"),
    ("3.5 stars", "three point five stars"),
    ("agent 007", "agent zero zero seven"),
    ("mp3 and 4k", "mp three and four k"),
    ("twenty-one", "twenty one"),
    ("Don't say 'hi'", "don't say hi"),
    ("rock & roll + jazz @ home", "rock and roll plus jazz at home"),
    ("Café  Beyoncé\tnaïve", "cafe beyonce naive"),
    ("it’s o’clock", "it's o'clock"),
    ("2 a month", "two a month"),
    ("10 amps", "ten amps"),
    ("  ", ""),
    ("你好", ""),
])
def test_normalize_by_hand(raw, norm):
    assert normalize(raw) == norm


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
       | st.from_regex(r"[A-Za-z0-9 :%$.,'\-°&]{0,40}", fullmatch=True))
def test_normalize_output_is_in_vocabulary_and_idempotent(raw):
    out = normalize(raw)
    assert re.fullmatch(r"([a-z']+( [a-z']+)*)?", out), out
    assert "''" not in out and not re.search(r"(^|\s)'|'($|\s)", out)
    assert normalize(out) == out
    assert is_normalized(out)
    assert decode(encode(out)) == out


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10 ** 12))
def test_normalize_spells_plain_integers(n):
    assert normalize(f"{n}") == naive_spell(n)


def test_normalize_refuses_non_text():
    with pytest.raises(TypeError, match="needs a str"):
        normalize(5)
