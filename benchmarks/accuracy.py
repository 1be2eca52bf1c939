"""Benchmark: the speech model's accuracy table (issue 3).

    .venv/bin/python benchmarks/accuracy.py [--manifest M] [--models DIR] [--limit N]
                                            [--out build/bench] [--readme [FILE]] [--json]

Every row is scored on the same utterances (the test split, default
``build/corpus/main/test.jsonl``, or its first ``--limit N``) with greedy decoding (the shipped
default also with beam search), by :func:`sim.commands.eval.evaluate_checkpoint` (WER over all
utterances and over those whose template was held out of training, CER):

* ``fp32``: ``MODELS/fp32.ckpt`` as trained;
* ``ptq8``, ``ptq4``: :func:`model.qat.quantize_post_training` of the fp32 model (observers keep
  the scales learned in float training, no calibration);
* ``qat8``, ``qat4``: ``MODELS/qat8.ckpt``, ``MODELS/qat4.ckpt``;
* ``prune50-ptq4`` ... ``prune90-ptq4``: :func:`model.prune.prune_post_training` of the fp32
  model, then 4-bit post-training quantization (the no-retraining baseline);
* ``qat4-s50`` ... ``qat4-s90``: ``MODELS/qat4-sNN.ckpt`` (4-bit QAT with gradual pruning);
* ``default``: the shipped default model (``--default``, ``models/default.ckpt``, ``make model``:
  the 4-bit, 80 % sparse QAT recipe, trained longer than ``qat4-s80``); the issue's targets for
  the 4-bit, 80 % sparse model judge it (``qat4-s80`` when it is not measured);
* ``default-int``: the same checkpoint decoded by the integer reference
  (:class:`model.intref.IntRNNT`, the accelerator's arithmetic, as ``zeroskip eval --int``);
* ``default-beam4``: the same checkpoint with beam search (beam 4; about 0.2 s per utterance
  on one core: ~11 min for the test split);
* ``default-beam4-lm``: beam 4 with the domain character language model (``--lm``, default
  ``models/lm.json.gz``, :mod:`model.lm`) fused in, as ``zeroskip transcribe`` decodes; the
  model file's SHA-256 and fusion weights are part of the row's cache key;
* ``default-beam8-lm``: the same with beam 8 (``zeroskip transcribe --beam 8``; ~2x the time);
* ``pocketsphinx``: :class:`model.baseline.PocketSphinxBaseline` with the trigram LM built from
  the texts of ``train.jsonl`` next to the manifest (as ``zeroskip eval --baseline`` does).

Footprint of a row: fp32 rows count 4 bytes per parameter (32 bits per weight); quantized rows
count :func:`model.prune.footprint` at the row's width (64-weight words with their 64-bit nonzero
bitmap and packed nonzero codes, per-row bias/multiplier/shift, the int8 embedding; bits per weight
is those total bytes * 8 over the matrix weights), and "vs fp32" is the same model's parameters at
4 bytes each (the fp32 checkpoint's weights when the presets match) over those bytes. Sparsity is
the measured fraction of matrix weights that are exactly zero (:func:`model.prune.sparsity_report`).

A checkpoint that does not exist leaves its rows "not trained (make model-all)" (without
``fp32.ckpt``, the post-training rows too) and the others are computed. A checkpoint that cannot be
read, or whose weight widths are not the row's (a ``qat4.ckpt`` with 8-bit weights), is an error:
one line on stderr naming the file, exit status 2, before any row is evaluated.

Lineage: a fine-tuned checkpoint records the SHA-256 of the checkpoint it was initialized from
(``init_sha256`` in its metrics); rows whose checkpoint was not fine-tuned from this table's
``fp32.ckpt`` (or that do not record it) are named under the table (:func:`lineage`).

Resuming: each row's result is written (atomically) to ``OUT/accuracy/<row>.json`` with its key:
the SHA-256 of the checkpoint file, the manifest's resolved path and SHA-256 (and that of
``train.jsonl`` beside it, which decides seen/held-out templates and PocketSphinx's LM), the
number of utterances, the transformation and the decoding. A rerun reuses every row whose key is
unchanged, so an interrupted run recomputes only the rows it had not finished. (The WAV files are
not hashed: regenerating a corpus rewrites its manifest, whose ids carry the rendering's hash.)

Below the table, WER by condition: the rows ``fp32``, ``default``, ``default-beam8-lm`` and
``pocketsphinx`` (those measured) per group of utterances (seen / held-out templates, noise
type, SNR in 10 dB bins), from the same hypotheses (cached with each row), grouped by
:func:`model.evaluate.breakdown` as ``zeroskip eval --by`` does.

Writes ``OUT/accuracy.json`` (rows, targets, conditions, the command), ``OUT/accuracy.png`` (WER
against footprint, :func:`plot`) and ``OUT/accuracy.md``
(the tables and the issue's targets as a pass/fail list) and prints the markdown; ``--readme`` also replaces the
block between ``<!-- accuracy:begin -->`` and ``<!-- accuracy:end -->`` of README.md. Targets that
fail are results, not errors: the exit status is 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from benchmarks.readme_block import check_block, markers, update_block  # noqa: E402

from model.checkpoint import CheckpointError, atomic_write  # noqa: E402
from model.checkpoint import load as load_checkpoint  # noqa: E402
from model.checkpoint import read_header  # noqa: E402
from model.corpus import CorpusError, read_manifest  # noqa: E402
from model.evaluate import _held_out  # noqa: E402
from sim.argtypes import positive_int  # noqa: E402
from sim.commands.eval import evaluate_checkpoint  # noqa: E402

__all__ = ["ROWS", "Row", "AccuracyError", "main", "run", "row_key", "lineage", "targets", "markdown",
           "update_readme", "NOT_TRAINED", "BEGIN", "END"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = "build/corpus/main/test.jsonl"
DEFAULT_MODELS = "build/models"
DEFAULT_LM = "models/lm.json.gz"
DEFAULT_OUT = "build/bench"
DEFAULT_README = ROOT / "README.md"
BEGIN, END = markers("accuracy")
NOT_TRAINED = "not trained (make model-all)"
#: Checkpoint name of the shipped default's rows: the file ``--default`` (models/default.ckpt).
SHIPPED = "default.ckpt"
DEFAULT_SHIPPED = ROOT / "models" / SHIPPED
#: Bumped whenever a row's result changes meaning, so older cache files are recomputed.
CACHE_VERSION = 1


class AccuracyError(Exception):
    """A reason to stop with exit status 2 (the message is one line)."""


@dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes
    ----------
    key : str
        Short name: the cache file's stem and the JSON's ``key``.
    label : str
        What the table calls it.
    checkpoint : str or None
        File name under MODELS (None: PocketSphinx).
    w_bits : int or None
        Weight width of the evaluated model (None: float).
    prune : float or None
        One-shot magnitude pruning of the checkpoint before quantizing (post-training rows).
    ptq : bool
        Post-training quantization of the (float) checkpoint to ``w_bits``.
    integer : bool
        Decode with the integer reference (:class:`model.intref.IntRNNT`) of the model.
    beam : int
        Beam width (1: batched greedy decoding, most rows; 4: as ``zeroskip transcribe``
        decodes).
    lm : bool
        Fuse the domain language model (``--lm``, default ``models/lm.json.gz``) into the beam
        search at its recorded weight and bonus.
    """

    key: str
    label: str
    checkpoint: str | None
    w_bits: int | None = None
    prune: float | None = None
    ptq: bool = False
    integer: bool = False
    beam: int = 1
    lm: bool = False

    @property
    def decoding(self) -> str:
        """``"greedy"``, ``"beam N"`` or ``"beam N + LM"`` (part of the cache key)."""
        return ("greedy" if self.beam == 1 else f"beam {self.beam}") + (" + LM" if self.lm else "")

    @property
    def transform(self) -> dict | None:
        """What is done to the checkpoint before scoring it (part of the cache key)."""
        if self.checkpoint is None:
            return {"baseline": "pocketsphinx"}
        t = {}
        if self.prune is not None:
            t["prune_post_training"] = self.prune
        if self.ptq:
            t["quantize_post_training"] = self.w_bits
        if self.integer:
            t["integer_reference"] = True
        return t or None


ROWS = (
    Row("fp32", "fp32", "fp32.ckpt"),
    Row("ptq8", "PTQ 8-bit", "fp32.ckpt", 8, ptq=True),
    Row("ptq4", "PTQ 4-bit", "fp32.ckpt", 4, ptq=True),
    Row("qat8", "QAT 8-bit", "qat8.ckpt", 8),
    Row("qat4", "QAT 4-bit", "qat4.ckpt", 4),
    *(Row(f"prune{s}-ptq4", f"post-training pruning {s} % + PTQ 4-bit", "fp32.ckpt", 4,
          prune=s / 100, ptq=True) for s in (50, 80, 90)),
    *(Row(f"qat4-s{s}", f"QAT 4-bit + gradual pruning {s} %", f"qat4-s{s}.ckpt", 4)
      for s in (50, 80, 90)),
    Row("default", "**shipped default** (`models/default.ckpt`: QAT 4-bit + gradual pruning "
        "80 %)", SHIPPED, 4),
    Row("default-int", "shipped default, integer reference (the accelerator)", SHIPPED, 4,
        integer=True),
    Row("default-beam4", "shipped default, beam 4", SHIPPED, 4, beam=4),
    Row("default-beam4-lm", "shipped default, beam 4 + domain character LM "
        "(as `zeroskip transcribe`)", SHIPPED, 4, beam=4, lm=True),
    Row("default-beam8-lm", "shipped default, beam 8 + domain character LM", SHIPPED, 4,
        beam=8, lm=True),
    Row("pocketsphinx", "PocketSphinx en-us + domain trigram LM", None),
)


# -- inputs and keys ----------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_file(models: Path, name: str, default: Path | None = None) -> Path:
    """The file of the checkpoint a row calls ``name``: ``MODELS/name``, except the shipped
    default's rows, which read ``default`` when given (``--default``)."""
    return Path(default) if name == SHIPPED and default is not None else Path(models) / name


def _expected_bits(row: Row) -> int | None:
    """Weight width the checkpoint itself must have (the PTQ rows start from a float model)."""
    return None if row.ptq else row.w_bits


def check_checkpoints(models: Path, rows=ROWS, headers: dict | None = None,
                      default: Path | None = None) -> dict[str, str]:
    """SHA-256 of every checkpoint the rows use that exists, after validating it.

    Raises
    ------
    CheckpointError
        Unreadable, truncated or corrupt (checked with :func:`model.checkpoint.read_header`,
        which verifies the payload's checksum).
    AccuracyError
        Weight widths that are not the row's.

    ``headers``, when given, receives each checkpoint's validated header by file name (for
    :func:`lineage`, so that no file is read twice).
    """
    out = {}
    headers = {} if headers is None else headers
    for row in rows:
        if row.checkpoint is None:
            continue
        path = checkpoint_file(models, row.checkpoint, default)
        if not path.exists():
            continue
        if row.checkpoint not in headers:
            headers[row.checkpoint] = read_header(path)
        header = headers[row.checkpoint]
        want = _expected_bits(row)
        got = header.get("w_bits") or {}
        if any(v != want for v in got.values()):
            have = sorted({str(v) for v in got.values()})
            raise AccuracyError(
                f"{path}: expected {'float' if want is None else f'{want}-bit'} weights in every "
                f"matrix for row {row.key!r}, the checkpoint has {', '.join(have)} (wrong file?)")
        if row.checkpoint not in out:
            out[row.checkpoint] = _sha256(path)
    return out


def lineage(models: Path, rows=ROWS, headers: dict | None = None,
            default: Path | None = None) -> dict[str, dict]:
    """Where each fine-tuned checkpoint's weights came from, against ``MODELS/fp32.ckpt``.

    ``{checkpoint name: {"init_sha256": str or None, "via": [names], "from_fp32": True, False or
    None}}`` for every existing checkpoint other than ``fp32.ckpt``: ``init_sha256`` is what
    training recorded (the header SHA-256 of its ``--init`` checkpoint, :func:`model.train.fit`'s
    ``lineage``; None when not recorded). The chain is followed through the table's other
    checkpoints and any other ``*.ckpt`` of ``models`` (the shipped default fine-tuned from
    ``default-polish1.ckpt``, from ``qat4-s80.ckpt``, from ``fp32.ckpt``; an unreadable extra
    file is passed over): ``via`` names those passed on the way, ``from_fp32`` says whether the chain
    ends at this table's fp32 model (None when a link does not record its origin, or there is
    no fp32 model). A table whose rows were fine-tuned from different fp32 models compares them
    unfairly; the markdown says so. ``headers``: those :func:`check_checkpoints` read.
    """
    headers = {} if headers is None else headers

    def header(name):
        if name not in headers:
            headers[name] = read_header(checkpoint_file(models, name, default))
        return headers[name]

    extra = {}   # headers of the models directory's other checkpoints, by file name

    def init_of(name):
        h = extra[name] if name in extra else header(name)
        return (h.get("metrics") or {}).get("init_sha256")

    names = [n for n in dict.fromkeys(r.checkpoint for r in rows)
             if n is not None and checkpoint_file(models, n, default).exists()]
    by_sha = {header(n)["sha256"]: n for n in names}
    for path in sorted(Path(models).glob("*.ckpt")):
        if path.name not in names:
            try:
                extra[path.name] = read_header(path)
            except (CheckpointError, OSError):
                continue
            by_sha.setdefault(extra[path.name]["sha256"], path.name)
    base = header("fp32.ckpt")["sha256"] if "fp32.ckpt" in names else None
    out = {}
    for name in names:
        if name == "fp32.ckpt":
            continue
        init = init_of(name)
        via, sha = [], init
        while sha is not None and sha != base and sha in by_sha and by_sha[sha] not in via:
            via.append(by_sha[sha])
            sha = init_of(by_sha[sha])
        out[name] = dict(init_sha256=init, via=via,
                         from_fp32=None if sha is None or base is None else sha == base)
    return out


def row_key(row: Row, *, checkpoints: dict, manifest: dict, utterances: int,
            extra: dict | None = None) -> dict:
    """The cache key of ``row`` (JSON-compatible; two runs agree iff their keys are equal)."""
    key = dict(version=CACHE_VERSION, row=row.key, transform=row.transform,
               checkpoint=(None if row.checkpoint is None
                           else {"name": row.checkpoint, "sha256": checkpoints[row.checkpoint]}),
               manifest=manifest, utterances=utterances,
               decoding=row.decoding)
    key.update(extra or {})
    return key


def _read_cache(path: Path, key: dict) -> dict | None:
    """The cached ``{key, result, utterances}`` of a row, if its key is ``key``."""
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(cached, dict) or cached.get("key") != key or "result" not in cached
            or not isinstance(cached.get("utterances"), list)):
        return None
    return cached


def _write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


# -- measuring one row --------------------------------------------------------------------------

def _scores(report: dict) -> dict:
    held = report.get("held_out_templates")
    seen = report.get("seen_templates")
    return dict(wer=report["all"]["wer"], cer=report["all"]["cer"],
                wer_held_out=held["wer"] if held else None,
                wer_seen=seen["wer"] if seen else None,
                utterances=report["all"]["utterances"], words=report["all"]["words"],
                held_out_utterances=held["utterances"] if held else 0,
                eval_seconds=report.get("seconds"))


def _model_row(row: Row, base, entries, *, train_templates, progress,
               fusion=None) -> tuple[dict, list]:
    from model.prune import footprint, prune_post_training, sparsity_report
    from model.qat import quantize_post_training

    model = base
    if row.prune is not None:
        model = prune_post_training(model, row.prune)
    if row.ptq:
        model = quantize_post_training(model, row.w_bits)
    model.eval()
    decoder = model
    if row.integer:
        from model.intref import IntRNNT
        decoder = IntRNNT.from_model(model).decoder()
    report = evaluate_checkpoint(decoder, entries, beam=row.beam, progress=progress,
                                 train_templates=train_templates, desc=row.key, fusion=fusion)
    params = sum(p.numel() for p in model.parameters())
    if row.w_bits is None:
        fp = dict(bytes=4 * params, bits_per_weight=32.0, fp32_bytes=4 * params, ratio=1.0)
    else:
        f = footprint(model, w_bits=row.w_bits)
        fp = dict(bytes=f["bytes"], bits_per_weight=f["bits_per_weight"],
                  fp32_bytes=f["fp32_bytes"], ratio=f["fp32_bytes"] / f["bytes"])
    sp = sparsity_report(model)
    result = dict(_scores(report), w_bits=row.w_bits, parameters=params, footprint=fp,
                  sparsity=sp["sparsity"],
                  sparsity_layers={k: v["sparsity"] for k, v in sp["layers"].items()})
    return result, report["utterances"]


def pocketsphinx_report(entries, *, train_manifest: Path, workdir: Path, train_templates,
                        progress) -> dict:
    """Score PocketSphinx with the domain trigram LM on ``entries`` (an evaluate() report)."""
    from model.audio import load_audio
    from model.baseline import PocketSphinxBaseline
    from model.evaluate import evaluate

    ps = PocketSphinxBaseline([e["text"] for e in read_manifest(train_manifest)], workdir)
    report = evaluate(entries, lambda e: ps.transcribe(load_audio(e["audio"])),
                      train_templates=train_templates, progress=progress, desc="pocketsphinx")
    report["oov_words"] = len(ps.oov)
    return report


# -- the table and the targets ------------------------------------------------------------------

def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f} %"


def _size(n: int) -> str:
    return f"{n / (1 << 20):.2f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def _bitmap_bound(row) -> str:
    """Why a bitmap format cannot reach 1/20 at this sparsity (the bound, from the row)."""
    s, b = row["sparsity"], row["w_bits"]
    bits = 1 + (1 - s) * b
    return (f"a 1-bit-per-weight nonzero bitmap plus {b}-bit values at {100 * s:.0f} % sparsity "
            f"is {bits:.2f} bits per weight before any per-row parameter, at best 1/{32 / bits:.1f}"
            f" (1/20 needs <= 1.6 bits)")


def _find(rows, key):
    r = next((r for r in rows if r["key"] == key), None)
    return r if r is not None and r["status"] == "ok" else None


_DECODING = {r.key: r.decoding for r in ROWS}


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets: ``{"name", "status": pass/fail/not measured, "detail"}`` each."""
    fp32, ps = _find(rows, "fp32"), _find(rows, "pocketsphinx")
    p80 = _find(rows, "prune80-ptq4")
    # the 4-bit, 80 % sparse QAT model judged: the shipped default (the one that ships), else
    # the qat4-s80 row (the same recipe as the table's other gradual-pruning rows)
    shipped = _find(rows, "default")
    q80 = shipped or _find(rows, "qat4-s80")
    q80i = _find(rows, "default-int") if shipped else None
    who = "shipped default " if shipped else "qat4-s80 "
    out = []

    def add(name, needed, ok, detail):
        if all(needed):
            out.append(dict(name=name, status="pass" if ok() else "fail", detail=detail()))
        else:
            out.append(dict(name=name, status="not measured", detail=None))

    add("fp32 WER <= 8 %", [fp32], lambda: fp32["wer"] <= 0.08,
        lambda: f"fp32 {_pct(fp32['wer'])}")
    add("QAT 4-bit + 80 % pruning within 1.0 WER point of fp32", [fp32, q80],
        lambda: q80["wer"] - fp32["wer"] <= 0.01 + 1e-12,
        lambda: f"{who}{_pct(q80['wer'])} vs {_pct(fp32['wer'])}: "
                f"{100 * (q80['wer'] - fp32['wer']):+.2f} points"
                + (" (not fine-tuned from this fp32 model)" if q80.get("from_fp32") is False
                   else ""))
    add("QAT 4-bit + 80 % pruning better than post-training pruning 80 % + PTQ 4-bit", [q80, p80],
        lambda: q80["wer"] < p80["wer"],
        lambda: f"{who}{_pct(q80['wer'])} vs {_pct(p80['wer'])}")
    add("QAT 4-bit + 80 % pruning footprint <= 1/20 of the fp32 weights", [q80],
        lambda: q80["footprint"]["bytes"] * 20 <= q80["footprint"]["fp32_bytes"],
        lambda: f"{who}{_size(q80['footprint']['bytes'])} of "
                f"{_size(q80['footprint']['fp32_bytes'])}"
                f" ({q80['footprint']['ratio']:.1f}x smaller); {_bitmap_bound(q80)}")
    beams = ("beam4", "beam4-lm", "beam8-lm") if shipped else ()
    decoded = [r for r in (q80, *(_find(rows, f"default-{d}") for d in beams)) if r is not None]
    best = min(decoded, key=lambda r: r["wer"]) if decoded else None
    add("QAT 4-bit + 80 % pruning WER <= 1/3 of PocketSphinx's (its best decoding)", [best, ps],
        lambda: 3 * best["wer"] <= ps["wer"],
        lambda: f"{who}{_pct(best['wer'])} ({_DECODING[best['key']]}) vs {_pct(ps['wer'])}: "
                f"needs "
                f"<= {_pct(ps['wer'] / 3)}")
    add("integer reference within 0.5 WER points of the fake-quantized model (issue 4)",
        [q80, q80i], lambda: abs(q80i["wer"] - q80["wer"]) <= 0.005 + 1e-12,
        lambda: f"{_pct(q80i['wer'])} vs {_pct(q80['wer'])}: "
                f"{100 * (q80i['wer'] - q80['wer']):+.2f} points")
    return out


#: Systems (row keys) of the WER-by-condition table, with their column headings.
CONDITION_COLUMNS = (("fp32", "fp32"), ("default", "shipped default (4-bit, 80 % sparse)"),
                     ("default-beam8-lm", "shipped default, beam 8 + LM"),
                     ("pocketsphinx", "PocketSphinx"))
#: Manifest fields of the WER-by-condition table (``model.evaluate.parse_group_spec``).
CONDITION_SPECS = ("heldout", "noise", "snr_db:10", "intent")


def _condition_label(spec: str, group: str) -> str:
    field = spec.split(":")[0]
    if field == "heldout":
        return {"True": "held-out templates", "False": "seen templates"}.get(group, group)
    if field == "noise":
        return "no noise" if group == "none" else f"{group} noise"
    if field == "snr_db":
        return "no noise" if group == "none" else f"SNR {group} dB"
    if field == "intent":
        return f"intent: {group}"
    return f"{field} {group}"


def conditions(entries: list[dict], hyps: dict) -> list[dict]:
    """WER of the :data:`CONDITION_COLUMNS` systems measured (``hyps``: row key -> its
    utterances, in manifest order) per group of each of :data:`CONDITION_SPECS` (specs whose
    field no entry has are left out): ``{spec, group, label, utterances, wer: {key: WER}}``."""
    from model.evaluate import breakdown

    cols = [k for k, _ in CONDITION_COLUMNS if k in hyps]
    if not cols:
        return []
    # seen / held out as the evaluator decided it (the manifest's flag or the training templates)
    entries = [dict(e, heldout=u.get("held_out")) for e, u in zip(entries, hyps[cols[0]])]
    out = []
    for spec in CONDITION_SPECS:
        try:
            per = {k: {g["group"]: g for g in breakdown(entries, hyps[k], spec)} for k in cols}
        except ValueError:   # no such field in this manifest
            continue
        for g in per[cols[0]].values():
            if spec == "snr_db:10" and g["group"] == "none":
                continue     # the same utterances as "no noise"
            out.append({"spec": spec, "group": g["group"],
                        "label": _condition_label(spec, g["group"]),
                        "utterances": g["utterances"],
                        "wer": {k: per[k][g["group"]]["wer"] for k in cols}})
    return out


def _origin(r: dict) -> str:
    """Where a row's checkpoint came from, when not (known to be) this table's fp32 model."""
    via = r.get("via") or []
    chain = "".join(f"fine-tuned from {v}, " for v in via)
    if r["from_fp32"] is None:
        return chain + "not recorded"
    if via:
        return chain + "from another model"
    return f"initialized from another model (SHA-256 {r['init_sha256'][:12]})"


def markdown(result: dict) -> str:
    """The table, the targets and how the figures were made, as markdown."""
    rows = result["rows"]
    n = result["utterances"]
    lines = [f"{n} utterance{'s' if n != 1 else ''} of `{result['manifest']}` "
             f"({result['held_out_utterances']} from held-out templates), greedy decoding unless "
             f"a row says otherwise. "
             f"Footprint in the accelerator's compressed format (64-weight words: 64-bit nonzero "
             f"bitmap + packed nonzero codes; per-row bias, multiplier, shift; int8 embedding); "
             f"fp32 rows at 4 bytes per parameter.", "",
             "| system | weights | sparsity | WER | WER held-out | CER | footprint | bits/weight "
             "| vs fp32 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['label']} | | | {r['reason']} | | | | | |")
            continue
        if r["key"] == "pocketsphinx":
            lines.append(f"| {r['label']} | — | — | {_pct(r['wer'])} "
                         f"| {_pct(r['wer_held_out'])} | {_pct(r['cer'])} | — | — | — |")
            continue
        fp = r["footprint"]
        vs = "1.0x" if r["w_bits"] is None else f"{fp['ratio']:.1f}x smaller"
        width = "fp32" if r["w_bits"] is None else f"{r['w_bits']}-bit"
        lines.append(f"| {r['label']} | {width} | {100 * r['sparsity']:.1f} % "
                     f"| {_pct(r['wer'])} | {_pct(r['wer_held_out'])} | {_pct(r['cer'])} "
                     f"| {_size(fp['bytes'])} | {fp['bits_per_weight']:.2f} "
                     f"| {vs} |")
    others = [r for r in rows if r["status"] == "ok" and r.get("from_fp32", True) is not True]
    if others:
        lines += ["", "Not fine-tuned from this table's fp32 model (or not recorded): "
                  + "; ".join(f"{r['label']}: {_origin(r)}" for r in others) + "."]
    lines += ["", "Targets (issue 3):", ""]
    for t in result["targets"]:
        detail = f": {t['detail']}" if t["detail"] else ""
        lines.append(f"- **{t['status']}** {t['name']}{detail}")
    conds = result.get("conditions") or []
    if conds:
        cols = [(k, h) for k, h in CONDITION_COLUMNS if k in conds[0]["wer"]]
        lines += ["", "WER by condition (the same utterances and hypotheses as the table):", "",
                  "| condition | utterances | " + " | ".join(h for _, h in cols) + " |",
                  "|---|---|" + "---|" * len(cols)]
        for c in conds:
            lines.append(f"| {c['label']} | {c['utterances']} | "
                         + " | ".join(_pct(c["wer"][k]) for k, _ in cols) + " |")
    lines += ["", f"Produced by `{result['command']}`."]
    return "\n".join(lines)


# -- README -------------------------------------------------------------------------------------

def check_readme(path: Path) -> None:
    """Raise :class:`AccuracyError` unless ``path`` holds the accuracy markers."""
    check_block(path, "accuracy", AccuracyError)


def update_readme(path: Path, block: str) -> None:
    """Replace what lies between the markers of ``path`` with ``block`` (atomically)."""
    update_block(path, "accuracy", block, AccuracyError)


# -- the run ------------------------------------------------------------------------------------

def _command(args) -> str:
    parts = [".venv/bin/python", "benchmarks/accuracy.py"]
    if args.manifest != DEFAULT_MANIFEST:
        parts += ["--manifest", args.manifest]
    if args.models != DEFAULT_MODELS:
        parts += ["--models", args.models]
    if args.limit:
        parts += ["--limit", str(args.limit)]
    if args.skip_pocketsphinx:
        parts.append("--skip-pocketsphinx")
    if args.lm != DEFAULT_LM:
        parts += ["--lm", args.lm]
    if args.rows:
        parts += ["--rows", ",".join(sorted(args.rows))]
    return shlex.join(parts)


def run(args: argparse.Namespace, *, log=None) -> dict:
    """Compute (or reuse) every row; write the JSON and markdown; return the result object.

    Raises :class:`AccuracyError` or :class:`model.checkpoint.CheckpointError` (exit 2).
    """
    log = log or (lambda msg: None)
    manifest = Path(args.manifest)
    models, out = Path(args.models), Path(args.out)
    readme = Path(args.readme) if args.readme else None
    if readme is not None:
        check_readme(readme)                   # before hours of work, not after
    try:
        entries = read_manifest(manifest)
    except CorpusError as e:
        raise AccuracyError(str(e)) from None
    if args.limit:
        entries = entries[:args.limit]
    if not entries:
        raise AccuracyError(f"manifest {manifest} has no utterances")
    headers = {}
    default = Path(args.default)
    shas = check_checkpoints(models, headers=headers, default=default)
    bases = lineage(models, headers=headers, default=default)
    train = manifest.with_name("train.jsonl")
    train_templates = None
    if train.exists():
        train_templates = {e["template"] for e in read_manifest(train) if "template" in e}
    mkey = dict(path=str(manifest.resolve()), sha256=_sha256(manifest),
                train_sha256=_sha256(train) if train.exists() else None)
    cache_dir = out / "accuracy"
    cache_dir.mkdir(parents=True, exist_ok=True)

    loaded = {}
    rows = []
    hyps = {}  # row key -> the row's utterances (id, ref, hyp), for the conditions table
    bar = tqdm(ROWS, desc="accuracy", unit="row", disable=not args.progress)
    for row in bar:
        bar.set_postfix_str(row.key)
        base = dict(key=row.key, label=row.label, w_bits=row.w_bits,
                    checkpoint=(None if row.checkpoint is None
                                else str(checkpoint_file(models, row.checkpoint, default))),
                    **bases.get(row.checkpoint, {}))
        extra = None
        if row.checkpoint is None:
            if args.skip_pocketsphinx:
                rows.append(dict(base, status="not measured",
                                 reason="skipped (--skip-pocketsphinx)"))
                continue
            if not train.exists():
                rows.append(dict(base, status="not measured",
                                 reason=f"no {train.name} next to the manifest for the LM"))
                continue
            try:
                from importlib.metadata import version
                extra = {"pocketsphinx": version("pocketsphinx")}
            except Exception:                      # noqa: BLE001 - not installed
                rows.append(dict(base, status="not measured", reason="pocketsphinx not installed"))
                continue
        elif row.checkpoint not in shas:
            rows.append(dict(base, status="not trained",
                             reason="not trained (make model)" if row.checkpoint == SHIPPED
                             else NOT_TRAINED))
            continue
        fusion = None
        if row.lm:
            lm_path = Path(args.lm)
            if not lm_path.exists():
                rows.append(dict(base, status="not measured",
                                 reason=f"no language model {lm_path} (make lm)"))
                continue
            from model.lm import CharLM
            fusion = CharLM.load(lm_path).fusion()
            extra = {"lm": {"sha256": _sha256(lm_path), **fusion.info}}
        key = row_key(row, checkpoints=shas, manifest=mkey, utterances=len(entries), extra=extra)
        cache = cache_dir / f"{row.key}.json"
        cached = _read_cache(cache, key)
        if cached is not None:
            hyps[row.key] = cached["utterances"]
            rows.append(dict(base, status="ok", cached=True, **cached["result"]))
            log(f"{row.key}: cached ({cache})")
            continue
        if args.rows and row.key not in args.rows:
            rows.append(dict(base, status="not measured", reason="not selected (--rows)"))
            continue
        t0 = time.perf_counter()
        if row.checkpoint is None:
            report = pocketsphinx_report(entries, train_manifest=train,
                                         workdir=cache_dir / "pocketsphinx",
                                         train_templates=train_templates, progress=args.progress)
            result = dict(_scores(report), oov_words=report.get("oov_words"))
            utterances = report["utterances"]
        else:
            if row.checkpoint not in loaded:
                loaded[row.checkpoint] = load_checkpoint(
                    checkpoint_file(models, row.checkpoint, default)).model
            result, utterances = _model_row(row, loaded[row.checkpoint], entries,
                                            train_templates=train_templates,
                                            progress=args.progress, fusion=fusion)
        result["seconds"] = time.perf_counter() - t0
        _write_json(cache, dict(key=key, result=result, utterances=utterances))
        hyps[row.key] = utterances
        rows.append(dict(base, status="ok", cached=False, **result))
        log(f"{row.key}: WER {_pct(result['wer'])}, CER {_pct(result['cer'])} "
            f"({len(entries)} utterances in {result['seconds']:.1f} s)")
    bar.close()

    held = sum(1 for e in entries if _held_out(e, train_templates) is True)
    result = dict(manifest=str(manifest), utterances=len(entries), limit=args.limit,
                  held_out_utterances=held, models=str(models), default=str(default),
                  decoding={r.key: r.decoding for r in ROWS},
                  command=_command(args), rows=rows)
    result["targets"] = targets(rows)
    result["conditions"] = conditions(entries, hyps)
    md = markdown(result)
    _write_json(out / "accuracy.json", result)
    atomic_write(out / "accuracy.md", (md + "\n").encode())
    try:
        plot(result, out / "accuracy.png")
    except Exception as e:  # noqa: BLE001 - the plot is a convenience; the table is written
        log(f"(no plot: {type(e).__name__}: {e})")
    if readme is not None:
        update_readme(readme, md)
    result["markdown"] = md
    return result


#: Plot families, in legend order: label, marker (with "-" the points are joined), colour,
#: where the point labels go (points offset (dx, dy), alignment), row-key predicate.
_FAMILIES = (
    ("fp32", "*", "black", (6, -3, "left"), lambda k: k == "fp32"),
    ("post-training quantization", "x", "tab:gray", (6, 5, "left"),     # above QAT's labels
     lambda k: k.startswith("ptq")),
    ("post-training pruning + PTQ 4-bit", "v", "tab:red", (6, -3, "left"),
     lambda k: k.startswith("prune")),
    ("QAT", "o", "tab:blue", (6, -3, "left"), lambda k: k in ("qat8", "qat4")),
    ("QAT 4-bit + gradual pruning", "s-", "tab:green", (6, -3, "left"),
     lambda k: k.startswith("qat4-s")),
    ("shipped default (greedy, beams)", "D", "tab:orange",             # left of qat4-s80's
     (-7, -3, "right"), lambda k: k.startswith("default") and k != "default-int"),
)

#: Short point labels of the plot.
_SHORT = {"fp32": "fp32", "ptq8": "PTQ8", "ptq4": "PTQ4", "qat8": "QAT8", "qat4": "QAT4",
          "default": "greedy", "default-beam4": "beam 4",
          "default-beam4-lm": "beam 4 + LM", "default-beam8-lm": "beam 8 + LM"}


def plot(result: dict, path: Path) -> bool:
    """WER against footprint (bits per weight) of every measured row, as a PNG at ``path``.

    One marker per row and family (not ``default-int``: the integer reference's WER is within
    a few hundredths of a point of the greedy row's, at the same footprint, and its marker would
    hide that one); the gradual-pruning rows joined in order of sparsity; the
    targets drawn as guides: fp32 + 1 point (the 80 %-sparse model's budget), 1.6 bits per
    weight (1/20 of fp32's 32), a third of PocketSphinx's WER (PocketSphinx has no footprint
    here, so it is a line). Returns False, saying nothing, when no row has both figures.
    """
    rows = [r for r in result["rows"] if r.get("status") == "ok" and r.get("footprint")]
    if not rows:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, marker, colour, (dx, dy, ha), member in _FAMILIES:
        fam = [r for r in rows if member(r["key"])]
        if not fam:
            continue
        xs = [r["footprint"]["bits_per_weight"] for r in fam]
        ys = [100 * r["wer"] for r in fam]
        ax.plot(xs, ys, marker, color=colour, label=label, markersize=8)
        for r, x, y in zip(fam, xs, ys):
            text = _SHORT.get(r["key"], f"{round(100 * r['sparsity'])} %")
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                        ha=ha)
    fp32, ps = _find(result["rows"], "fp32"), _find(result["rows"], "pocketsphinx")
    if fp32 is not None:
        ax.axhline(100 * fp32["wer"] + 1, color="black", ls=":", lw=1,
                   label="fp32 + 1 point (target for 4-bit, 80 % sparse)")
    if ps is not None:
        ax.axhline(100 * ps["wer"], color="tab:purple", ls="--", lw=1,
                   label=f"PocketSphinx + domain LM ({_pct(ps['wer'])})")
        ax.axhline(100 * ps["wer"] / 3, color="tab:purple", ls=":", lw=1,
                   label="a third of PocketSphinx's WER (target)")
    ax.axvline(1.6, color="tab:green", ls=":", lw=1, label="1.6 bits per weight (1/20 of fp32)")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8, 16, 32], labels=["1", "2", "4", "8", "16", "32"])
    ax.set(xlabel="footprint, bits per weight (bitmap, values and per-row parameters)",
           ylabel="WER, % (test split)", ylim=(0, 105),
           title=f"Accuracy against footprint: {result['utterances']} utterances of "
                 f"{Path(result['manifest']).name}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _row_keys(text: str) -> set[str]:
    keys = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(keys - {r.key for r in ROWS})
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown row(s) {', '.join(unknown) or repr(text)}; rows: "
            + ", ".join(r.key for r in ROWS))
    return keys


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="rows: " + ", ".join(r.key for r in ROWS))
    ap.add_argument("--manifest", default=DEFAULT_MANIFEST, metavar="M",
                    help=f"test split (default {DEFAULT_MANIFEST})")
    ap.add_argument("--models", default=DEFAULT_MODELS, metavar="DIR",
                    help=f"directory of fp32.ckpt, qat8.ckpt, ... (default {DEFAULT_MODELS})")
    ap.add_argument("--limit", type=positive_int, default=None, metavar="N",
                    help="only the first N utterances")
    ap.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                    help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--readme", nargs="?", const=str(DEFAULT_README), default=None,
                    metavar="FILE", help="replace the marked block of README.md (or FILE) with "
                    "the table")
    ap.add_argument("--json", action="store_true", help="print the result object as JSON")
    ap.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bars")
    ap.add_argument("--skip-pocketsphinx", action="store_true",
                    help="leave out the (slow) PocketSphinx row")
    ap.add_argument("--rows", type=_row_keys, default=None, metavar="KEY,...",
                    help="compute only these rows (the others come from the cache when it "
                         "holds them, else are 'not measured')")
    ap.add_argument("--default", default=str(DEFAULT_SHIPPED), metavar="FILE",
                    help="the shipped default model of the 'shipped default' rows (default "
                         "models/default.ckpt)")
    ap.add_argument("--lm", default=DEFAULT_LM, metavar="FILE",
                    help=f"language model of the '+ LM' rows (default {DEFAULT_LM})")
    ap.add_argument("--threads", type=positive_int, default=None, metavar="N",
                    help="torch threads (default: torch's)")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    log = (lambda msg: tqdm.write(msg, file=sys.stderr)) if args.progress else None
    try:
        result = run(args, log=log)
    except (AccuracyError, CheckpointError) as e:
        print(f"accuracy: error: {e}", file=sys.stderr)
        return 2
    md = result.pop("markdown")
    if args.json:
        print(json.dumps(result))
    else:
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
