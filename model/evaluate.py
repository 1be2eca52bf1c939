"""Word and character error rates of a recognizer on a corpus manifest.

WER and CER are computed with ``jiwer`` over the whole split (errors summed over utterances,
divided by the reference words / characters summed over utterances: the corpus-level rate, not a
mean of per-utterance rates). References and hypotheses are normalized texts (lowercase letters,
apostrophe, single spaces); an empty hypothesis counts every reference word as deleted.

The report splits the figures by whether an utterance's template was seen in training
(``template_seen``) or held out (the corpus's generalization test), when the manifest entries
say so (``heldout``, as ``zeroskip corpus`` writes, or ``template`` + the set of training
templates), and, on request, by any field of the manifest entries (``by``: the noise type, the
voice, the SNR in bins of a given width...).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable

__all__ = ["error_rates", "evaluate", "parse_group_spec", "group_label", "groups", "breakdown"]


def parse_group_spec(spec: str) -> tuple[str, float | None]:
    """``"FIELD"`` or ``"FIELD:WIDTH"`` (numeric values binned by ``WIDTH``) -> (field, width).

    Raises ``ValueError`` with a one-line message on a malformed spec.
    """
    field, sep, width = spec.partition(":")
    field = field.strip()
    if not field:
        raise ValueError(f"{spec!r}: expected FIELD or FIELD:WIDTH, e.g. noise or snr_db:10")
    if not sep:
        return field, None
    try:
        w = float(width)
    except ValueError:
        w = float("nan")
    if not (w > 0 and math.isfinite(w)):
        raise ValueError(f"{spec!r}: the bin width must be a positive number, not {width!r}")
    return field, w


def group_label(value, width: float | None):
    """The group of a field's ``value``: itself (as text), ``"none"`` when missing or null, or
    with ``width`` the bin ``"LO-HI"`` (``LO`` a multiple of ``width``) holding the number.

    Raises ``ValueError`` when ``width`` is given and the value is not a number.
    """
    return _group(value, width)[1]


def _group(value, width: float | None) -> tuple[tuple, str]:
    """``(sort key, label)`` of :func:`group_label`: bins in numeric order, then other labels
    alphabetically, ``none`` (missing, null or the text itself) last."""
    if value is None:
        return (2, 0.0), "none"
    if width is None:
        label = str(value)
        return (2 if label == "none" else 1, 0.0), label
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"value {value!r} is not a number, so it cannot be binned")
    lo = math.floor(value / width) * width
    return (0, lo), f"{lo:g}-{lo + width:g}"


def groups(entries: list[dict], spec: str) -> dict[str, list[int]]:
    """Indices of ``entries`` per group of ``spec`` (see :func:`parse_group_spec`), groups in
    :func:`group_label`'s order.

    Raises ``ValueError`` when the spec is malformed, no entry has the field or a value
    cannot be binned.
    """
    field, width = parse_group_spec(spec)
    if not any(field in e for e in entries):
        fields = sorted({k for e in entries for k in e})
        raise ValueError(f"no utterance has the field {field!r}; the manifest's fields are "
                         f"{', '.join(fields)}")
    out: dict[str, list[int]] = {}
    keys = {}
    for i, e in enumerate(entries):
        try:
            key, label = _group(e.get(field), width)
        except ValueError as err:
            raise ValueError(f"{spec}: utterance {e.get('id')}: {err}") from None
        keys[label] = key
        out.setdefault(label, []).append(i)
    return {label: out[label] for label in sorted(out, key=lambda g: (keys[g], g))}


def breakdown(entries: list[dict], rows: list[dict], spec: str) -> list[dict]:
    """Error rates of ``rows`` (hypotheses of ``entries``, in order) grouped by ``spec``
    (:func:`groups`): one dict per group, ``group`` plus :func:`error_rates`.

    Raises ``ValueError`` as :func:`groups` does.
    """
    if len(rows) != len(entries):
        raise ValueError(f"breakdown: {len(entries)} entries but {len(rows)} rows")
    out = []
    for label, idx in groups(entries, spec).items():
        sub = [rows[i] for i in idx if rows[i]["ref"].strip()]
        if sub:
            out.append({"group": label, **error_rates([r["ref"] for r in sub],
                                                      [r["hyp"] for r in sub])})
    return out


def error_rates(refs: list[str], hyps: list[str]) -> dict:
    """Corpus-level WER and CER.

    Returns ``wer``, ``cer`` (fractions), ``words``, ``chars`` (reference totals) and the word
    ``substitutions``, ``deletions``, ``insertions``.
    """
    import jiwer

    if len(refs) != len(hyps):
        raise ValueError(f"error_rates: {len(refs)} references but {len(hyps)} hypotheses")
    pairs = [(r.strip(), h.strip()) for r, h in zip(refs, hyps) if r.strip()]
    if not pairs:
        raise ValueError("error_rates: no non-empty reference")
    r = [p[0] for p in pairs]
    # jiwer refuses empty hypotheses in some versions; an empty string as "" is all deletions.
    h = [p[1] for p in pairs]
    words = jiwer.process_words(r, h)
    chars = jiwer.process_characters(r, h)
    n_words = sum(len(x.split()) for x in r)
    n_chars = sum(len(x) for x in r)
    return {
        "wer": (words.substitutions + words.deletions + words.insertions) / n_words,
        "cer": (chars.substitutions + chars.deletions + chars.insertions) / n_chars,
        "words": n_words, "chars": n_chars, "utterances": len(pairs),
        "substitutions": words.substitutions, "deletions": words.deletions,
        "insertions": words.insertions,
    }


def evaluate(entries: Iterable[dict], transcribe: Callable[[dict], str], *,
             train_templates: set | None = None, progress: bool = True,
             desc: str = "eval") -> dict:
    """Run ``transcribe(entry) -> text`` over manifest ``entries`` and score it.

    Parameters
    ----------
    entries : iterable of dict
        Manifest entries with at least ``text``; ``heldout`` or ``template``
        are used for the seen/held-out breakdown.
    transcribe : callable
        The recognizer, called once per entry.
    train_templates : set, optional
        Templates of the training split; entries whose template is not in it are held out.

    Returns
    -------
    dict
        ``all`` (see :func:`error_rates`), ``seen_templates`` and ``held_out_templates`` (when
        the breakdown is possible and non-empty), ``seconds``, ``utterances`` (a list of
        ``{id, ref, hyp}``, in the order of ``entries``: see :func:`breakdown`).
    """
    from tqdm import tqdm

    entries = list(entries)
    t0 = time.perf_counter()
    rows = []
    for e in tqdm(entries, desc=desc, unit="utt", disable=not progress):
        hyp = transcribe(e)
        rows.append({"id": e.get("id"), "ref": e["text"], "hyp": hyp,
                     "held_out": _held_out(e, train_templates)})
    report = {"all": error_rates([r["ref"] for r in rows], [r["hyp"] for r in rows]),
              "seconds": time.perf_counter() - t0, "utterances": rows}
    for key, flag in (("seen_templates", False), ("held_out_templates", True)):
        sub = [r for r in rows if r["held_out"] is flag]
        if sub:
            report[key] = error_rates([r["ref"] for r in sub], [r["hyp"] for r in sub])
    return report


def _held_out(entry: dict, train_templates: set | None):
    for key in ("heldout", "held_out"):
        if key in entry:
            return bool(entry[key])
    if train_templates is not None and "template" in entry:
        return entry["template"] not in train_templates
    return None
