"""Transcript text: the character vocabulary, normalization and number spelling.

The recognizer's output alphabet is 28 symbols plus the transducer's blank: space, apostrophe and
the lowercase letters ``a``–``z``. Every transcript the project stores, trains on or scores is in
*normalized* form: lowercase ASCII letters, apostrophes inside words, single spaces between words,
no leading or trailing space, and every number spelled out the way a person says it to a voice
assistant.

Spelling conventions (American English, chosen once, used everywhere)
---------------------------------------------------------------------
- Cardinals without "and": ``105`` → "one hundred five", ``1005`` → "one thousand five",
  ``2024`` → "two thousand twenty four" (no year readings); ``-3`` → "minus three".
- A digit string with a leading zero is read digit by digit (``007`` → "zero zero seven").
- Thousands separators are removed (``1,250`` → "one thousand two hundred fifty").
- Decimals: ``3.5`` → "three point five", ``0.25`` → "zero point two five".
- Ordinals from a digit suffix: ``21st`` → "twenty first", ``100th`` → "one hundredth".
- Percent: ``40%`` → "forty percent". Degrees: ``72°`` → "seventy two degrees".
  Money: ``$5`` → "five dollars", ``$3.50`` → "three dollars fifty cents".
- Clock times (``H:MM`` with an optional am/pm): ``7:30 pm`` → "seven thirty p m",
  ``7:05`` → "seven oh five", ``7:00 am`` / ``7 am`` → "seven a m",
  ``7:00`` → "seven o'clock",
  ``12:00`` → "twelve o'clock", ``0:15`` → "zero fifteen", ``14:00`` → "fourteen hundred".
  "am"/"pm" (and "a.m."/"p.m.") are spelled "a m"/"p m" only right after a number or a time.
- ``&`` → "and", ``+`` → "plus", ``@`` → "at"; hyphens and other punctuation separate words;
  accents are dropped (``café`` → "cafe"); an apostrophe survives only between two letters
  (``don't``, ``o'clock``), so quotes and trailing possessive marks disappear.
- Digits glued to letters are split off: ``mp3`` → "mp three", ``4k`` → "four k".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "VOCAB", "BLANK", "normalize", "encode", "decode", "is_normalized",
    "spell_number", "spell_ordinal", "spell_digits", "spell_time", "spell_decimal",
]

#: Output symbols: index 0 is the transducer's blank, then space, apostrophe and ``a``..``z``.
VOCAB: list[str] = ["<blank>", " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
#: Index of the blank symbol in :data:`VOCAB`.
BLANK = 0

_INDEX = {ch: i for i, ch in enumerate(VOCAB) if i != BLANK}

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "four": "fourth", "five": "fifth",
    "six": "sixth", "seven": "seventh", "eight": "eighth", "nine": "ninth", "ten": "tenth",
    "eleven": "eleventh", "twelve": "twelfth", "twenty": "twentieth", "thirty": "thirtieth",
    "forty": "fortieth", "fifty": "fiftieth", "sixty": "sixtieth", "seventy": "seventieth",
    "eighty": "eightieth", "ninety": "ninetieth", "zero": "zeroth",
}


# -- numbers ----------------------------------------------------------------------------------

def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def spell_number(n: int) -> str:
    """Spell the integer ``n`` in words (American style, no "and").

    Parameters
    ----------
    n : int
        Any integer with ``abs(n) < 10**15``.

    Returns
    -------
    str
        Normalized words, e.g. ``spell_number(1005) == "one thousand five"``,
        ``spell_number(-21) == "minus twenty one"``.

    Raises
    ------
    TypeError
        If ``n`` is not an ``int`` (``bool`` is refused too).
    ValueError
        If ``abs(n) >= 10**15``.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"spell_number needs an int, not {type(n).__name__} ({n!r})")
    if abs(n) >= 10 ** 15:
        raise ValueError(f"spell_number supports |n| < 10**15, got {n}; spell it digit by digit "
                         f"with spell_digits() instead")
    if n < 0:
        return "minus " + spell_number(-n)
    if n == 0:
        return "zero"
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            count, n = divmod(n, value)
            words += _below_thousand(count) + [name]
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def spell_ordinal(n: int) -> str:
    """Spell the ordinal of the non-negative integer ``n``: 1 → "first", 21 → "twenty first",
    100 → "one hundredth", 1005 → "one thousand fifth"."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"spell_ordinal needs a non-negative int, got {n!r}")
    words = spell_number(n).split(" ")
    last = words[-1]
    words[-1] = _ORDINAL_WORDS.get(last, last + "th")
    return " ".join(words)


def spell_digits(digits: str) -> str:
    """Read a string of decimal digits one by one: ``"007"`` → "zero zero seven"."""
    if not digits or not digits.isdigit() or not digits.isascii():
        raise ValueError(f"spell_digits needs a non-empty string of digits 0-9, got {digits!r}")
    return " ".join(_ONES[int(d)] for d in digits)


def spell_decimal(text: str) -> str:
    """Read a decimal numeral: ``"3.5"`` → "three point five", ``"1,250.75"`` →
    "one thousand two hundred fifty point seven five"."""
    m = re.fullmatch(r"(\d[\d,]*)?\.(\d+)", text) or re.fullmatch(r"(\d[\d,]*)", text)
    if m is None:
        raise ValueError(f"spell_decimal needs digits with an optional '.fraction', got {text!r}")
    whole = (m.group(1) or "0").replace(",", "")
    words = _spell_integer_string(whole)
    if m.re.groups == 2 and m.group(2) is not None:
        words += " point " + spell_digits(m.group(2))
    return words


def _spell_integer_string(digits: str) -> str:
    """Cardinal for plain digit strings, digit by digit with a leading zero or beyond 10**15."""
    if len(digits) > 1 and digits[0] == "0" or len(digits) > 15:
        return spell_digits(digits)
    return spell_number(int(digits))


def spell_time(hour: int, minute: int = 0, meridiem: str | None = None) -> str:
    """Spell a clock time the way it is said aloud.

    Parameters
    ----------
    hour : int
        0–23 without a meridiem; 1–12 with one (0 is read as twelve then).
    minute : int
        0–59.
    meridiem : {"am", "pm", None}
        Morning/evening marker, spelled as the letters "a m" / "p m".

    Examples
    --------
    ``spell_time(7, 30, "pm") == "seven thirty p m"``; ``spell_time(7, 5) == "seven oh five"``;
    ``spell_time(7) == "seven o'clock"``; ``spell_time(14) == "fourteen hundred"``;
    ``spell_time(6, 0, "am") == "six a m"``.
    """
    if meridiem is not None:
        meridiem = meridiem.replace(".", "").lower()
        if meridiem not in ("am", "pm"):
            raise ValueError(f"meridiem must be 'am', 'pm' or None, got {meridiem!r}")
        if not 0 <= hour <= 12:
            raise ValueError(f"hour {hour} is outside 0-12, which a time with {meridiem} needs")
        hour = hour or 12
    elif not 0 <= hour <= 23:
        raise ValueError(f"hour {hour} is outside 0-23")
    if not 0 <= minute <= 59:
        raise ValueError(f"minute {minute} is outside 0-59")
    words = [spell_number(hour)]
    if minute == 0:
        if meridiem is None:
            words.append("hundred" if hour > 12 else "o'clock")
    elif minute < 10:
        words += ["oh", _ONES[minute]]
    else:
        words.append(spell_number(minute))
    if meridiem is not None:
        words.append(" ".join(meridiem))
    return " ".join(words)


# -- normalization ----------------------------------------------------------------------------

_MERIDIEM = r"(?:\s*(?P<mer>[ap])\.?\s?m\b\.?)"
_TIME_RE = re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})\b" + _MERIDIEM + "?", re.IGNORECASE)
_HOUR_MER_RE = re.compile(r"\b(?P<h>\d{1,2})" + _MERIDIEM, re.IGNORECASE)
_ORDINAL_RE = re.compile(r"\b(?P<n>\d[\d,]*)(?P<suf>st|nd|rd|th)\b", re.IGNORECASE)
_MONEY_RE = re.compile(r"\$\s?(?P<d>\d[\d,]*)(?:\.(?P<c>\d{2}))?(?!\d)")
_PERCENT_RE = re.compile(r"(?P<num>\d[\d,]*(?:\.\d+)?)\s?%")
_DEGREE_RE = re.compile(r"(?P<num>-?\d[\d,]*(?:\.\d+)?)\s?°\s?(?P<unit>[cf](?![a-z]))?",
                        re.IGNORECASE)
_NEGATIVE_RE = re.compile(r"(?:(?<=\s)|^)-(?=\d)")
_NUMBER_RE = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?(?!\d)|\d*\.\d+|\d+")


def _time_sub(m: re.Match) -> str:
    h, mi = int(m.group("h")), int(m.group("m"))
    mer = m.group("mer")
    try:
        return " " + spell_time(h, mi, (mer.lower() + "m") if mer else None) + " "
    except ValueError:
        # not a valid clock time (e.g. a ratio "25:70"): read the two numbers
        return f" {spell_number(h)} {spell_number(mi)} "


def _hour_mer_sub(m: re.Match) -> str:
    h = int(m.group("h"))
    if h > 12:
        return m.group(0)
    return " " + spell_time(h, 0, m.group("mer").lower() + "m") + " "


def _ordinal_sub(m: re.Match) -> str:
    digits = m.group("n").replace(",", "")
    return " " + spell_ordinal(int(digits)) + " "


def _money_sub(m: re.Match) -> str:
    dollars = int(m.group("d").replace(",", ""))
    words = spell_number(dollars) + (" dollar" if dollars == 1 else " dollars")
    if m.group("c") and int(m.group("c")):
        cents = int(m.group("c"))
        words += " " + spell_number(cents) + (" cent" if cents == 1 else " cents")
    return " " + words + " "


def _degree_sub(m: re.Match) -> str:
    unit = (m.group("unit") or "").lower()
    name = {"c": " celsius", "f": " fahrenheit"}.get(unit, "")
    return f" {m.group('num')} degrees{name} "


def _number_sub(m: re.Match) -> str:
    return " " + spell_decimal(m.group(0)) + " "


def normalize(text: str) -> str:
    """Bring ``text`` to the transcript form: lowercase ``a``–``z``, apostrophes inside words,
    single spaces, numbers spelled out (see the module docstring for the conventions).

    Parameters
    ----------
    text : str
        Any Unicode text.

    Returns
    -------
    str
        The normalized text; ``normalize(normalize(t)) == normalize(t)`` for every ``t``.

    Examples
    --------
    >>> normalize("Set an alarm for 7:30 PM, please!")
    'set an alarm for seven thirty p m please'
    >>> normalize("Dim the lights to 40%")
    'dim the lights to forty percent'
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize needs a str, not {type(text).__name__}")
    t = unicodedata.normalize("NFKC", text)
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'").replace("`", "'")
    # numbers and the symbols that are read as words
    t = _TIME_RE.sub(_time_sub, t)
    t = _HOUR_MER_RE.sub(_hour_mer_sub, t)
    t = _MONEY_RE.sub(_money_sub, t)
    t = _PERCENT_RE.sub(lambda m: f" {m.group('num')} percent ", t)
    t = _DEGREE_RE.sub(_degree_sub, t)
    t = _ORDINAL_RE.sub(_ordinal_sub, t)
    t = _NEGATIVE_RE.sub(" minus ", t)
    t = re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", t)  # split "mp3", "4k"
    t = _NUMBER_RE.sub(_number_sub, t)
    t = t.replace("&", " and ").replace("+", " plus ").replace("@", " at ")
    # letters: strip accents, lowercase, keep apostrophes only between letters
    t = unicodedata.normalize("NFKD", t)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    t = t.replace("ß", "ss").replace("æ", "ae").replace("œ", "oe").replace("ø", "o")
    t = re.sub(r"[^a-z']+", " ", t)
    t = re.sub(r"(?<![a-z])'+|'+(?![a-z])", " ", t)
    t = re.sub(r"'{2,}", "'", t)
    return " ".join(t.split())


def is_normalized(text: str) -> bool:
    """True if ``text`` is already in normalized form (``normalize(text) == text``)."""
    return isinstance(text, str) and normalize(text) == text


# -- ids --------------------------------------------------------------------------------------

def encode(text: str) -> list[int]:
    """Map a normalized text to symbol ids 1..28 (no blanks).

    Raises
    ------
    ValueError
        If ``text`` holds a character outside :data:`VOCAB`; the message names it and its
        position. Run :func:`normalize` first.
    """
    if not isinstance(text, str):
        raise TypeError(f"encode needs a str, not {type(text).__name__}")
    ids = []
    for pos, ch in enumerate(text):
        i = _INDEX.get(ch)
        if i is None:
            raise ValueError(f"character {ch!r} at position {pos} of {text[:60]!r} is not in the "
                             f"vocabulary (a-z, apostrophe, space); normalize(text) first")
        ids.append(i)
    return ids


def decode(ids: Iterable[int]) -> str:
    """Map symbol ids back to text, skipping blanks (id 0).

    ``ids`` may be any iterable of integers (a list, a numpy array, a 1-D torch tensor).

    Raises
    ------
    ValueError
        If an id is outside ``0 .. len(VOCAB) - 1``.
    """
    out = []
    for pos, i in enumerate(ids):
        i = int(i)
        if i == BLANK:
            continue
        if not 0 < i < len(VOCAB):
            raise ValueError(f"id {i} at position {pos} is outside the vocabulary "
                             f"0..{len(VOCAB) - 1}")
        out.append(VOCAB[i])
    return "".join(out)
