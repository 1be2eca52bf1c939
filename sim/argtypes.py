"""``argparse`` types shared by the ``zeroskip`` subcommands: each parses one command-line value
or raises :class:`argparse.ArgumentTypeError` with a message argparse prints after the option."""

from __future__ import annotations

import argparse
import math

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float"]


def _parse(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    v = _parse(text, int)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} must be positive")
    return v


def nonnegative_int(text: str) -> int:
    v = _parse(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must not be negative")
    return v


def positive_float(text: str) -> float:
    v = _parse(text, float)
    if not v > 0 or math.isinf(v):
        raise argparse.ArgumentTypeError(f"{v} must be a positive number")
    return v


def nonnegative_float(text: str) -> float:
    v = _parse(text, float)
    if not v >= 0 or math.isinf(v):
        raise argparse.ArgumentTypeError(f"{v} must be a non-negative number")
    return v
