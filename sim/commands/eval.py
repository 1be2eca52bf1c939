"""``zeroskip eval``: WER and CER of a model (or of the PocketSphinx baseline) on a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .lm import add_lm_arguments, load_fusion
from .transcribe import add_model_argument, resolve_model
from ..argtypes import positive_int as _positive

__all__ = ["register", "run", "evaluate_checkpoint"]

_DESCRIPTION = """\
Word and character error rates on a corpus manifest (a JSONL split written by `zeroskip corpus`),
overall and split into sentences from templates seen in training and held out of it, and with
--by into groups of any manifest field (noise type, voice, SNR bins...). The model
is the float RNN-T in PyTorch as trained (fake quantization and pruning masks included); or,
with --int, the integer reference of a quantized model (model/intref.py: the accelerator's exact
arithmetic, what `zeroskip simulate` reproduces bit for bit); or, with --baseline pocketsphinx,
PocketSphinx's en-us acoustic model with a trigram language model built from the corpus's
training texts."""

_EPILOG = """\
examples:
  zeroskip eval --manifest build/corpus/main/test.jsonl
  zeroskip eval --manifest build/corpus/main/test.jsonl --model build/models/fp32.ckpt --json
  zeroskip eval --manifest build/corpus/main/test.jsonl --int     # the accelerator's arithmetic
  zeroskip eval --manifest build/corpus/main/test.jsonl --by noise,snr_db:10,intent
  zeroskip eval --manifest build/corpus/main/test.jsonl --baseline pocketsphinx --limit 500
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to ``subparsers``; return its parser."""
    p = subparsers.add_parser("eval", help="WER/CER of a model or of PocketSphinx on a manifest",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, metavar="M", help="a JSONL split, e.g. test.jsonl")
    add_model_argument(p)
    p.add_argument("--baseline", choices=("pocketsphinx",), default=None,
                   help="evaluate the baseline recognizer instead of a model")
    p.add_argument("--int", dest="integer", action="store_true",
                   help="decode with the integer reference of the (quantized) model")
    p.add_argument("--beam", type=_positive, default=1, metavar="N",
                   help="beam width (default 1: batched greedy decoding)")
    add_lm_arguments(p, default_on=False)
    p.add_argument("--by", default="", metavar="FIELD[:WIDTH],...",
                   help="also break WER/CER down by these manifest fields, numbers binned by "
                        "WIDTH (e.g. noise,voice,snr_db:10; missing values group as 'none')")
    p.add_argument("--limit", type=_positive, default=None, metavar="N",
                   help="only the first N utterances")
    p.add_argument("--out", metavar="FILE", help="also write the full report (with every "
                   "utterance's hypothesis) as JSON")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=run)
    return p


def _train_templates(manifest: Path):
    """Templates of the corpus's training split, when it sits next to ``manifest``."""
    train = manifest.with_name("train.jsonl")
    if not train.exists():
        return None
    from model.corpus import read_manifest
    return {e["template"] for e in read_manifest(train) if "template" in e}


def evaluate_checkpoint(model, entries, *, beam: int = 1, batch: int = 32, progress=True,
                        train_templates=None, desc="eval", fusion=None) -> dict:
    """Score ``model`` (an :class:`model.rnnt.RNNT`) on manifest ``entries`` (``fusion``: a
    :class:`model.lm.Fusion` for the beam search)."""
    import torch

    from model.audio import load_audio
    from model.decode import beam_search, greedy_batch
    from model.evaluate import evaluate
    from model.frontend import features

    if beam == 1 and fusion is None:
        # Batched greedy decoding: decode in length-sorted batches up front, then score.
        import time
        t0 = time.perf_counter()
        order = sorted(range(len(entries)), key=lambda i: entries[i].get("duration", 0))
        hyps = {}
        from tqdm import tqdm
        for s in tqdm(range(0, len(order), batch), desc=f"{desc} (decode)", unit="batch",
                      disable=not progress):
            idx = order[s:s + batch]
            fs = [features(torch.from_numpy(load_audio(entries[i]["audio"]))) for i in idx]
            lengths = torch.tensor([f.shape[0] for f in fs])
            padded = torch.nn.utils.rnn.pad_sequence(fs, batch_first=True)
            for i, text in zip(idx, greedy_batch(model, padded, lengths)):
                hyps[i] = text
        key = {id(e): i for i, e in enumerate(entries)}
        report = evaluate(entries, lambda e: hyps[key[id(e)]], train_templates=train_templates,
                          progress=False, desc=desc)
        report["seconds"] = time.perf_counter() - t0
        return report

    def one(e):
        f = features(torch.from_numpy(load_audio(e["audio"])))
        return beam_search(model, f, beam=beam, nbest=1, fusion=fusion)[0][0]
    return evaluate(entries, one, train_templates=train_templates, progress=progress, desc=desc)


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip eval``; returns the exit status."""
    from model.corpus import CorpusError, read_manifest

    manifest = Path(args.manifest)
    try:
        entries = read_manifest(manifest)
    except CorpusError as e:
        print(f"zeroskip eval: error: {e}", file=sys.stderr)
        return 2
    if args.limit:
        entries = entries[:args.limit]
    if not entries:
        print(f"zeroskip eval: error: manifest {manifest} has no utterances", file=sys.stderr)
        return 2
    by = [spec for spec in args.by.split(",") if spec.strip()]
    from model.evaluate import breakdown, groups
    try:  # every group spec checked before anything is decoded
        for spec in by:
            groups(entries, spec)
    except ValueError as e:
        print(f"zeroskip eval: error: --by {e}", file=sys.stderr)
        return 2
    train_templates = _train_templates(manifest)
    from model.lm import LMError
    try:
        fusion = load_fusion(args, default_model=False)
    except LMError as e:
        print(f"zeroskip eval: error: {e}", file=sys.stderr)
        return 2
    if fusion is not None and args.baseline:
        print("zeroskip eval: error: --lm fuses a language model into the RNN-T's beam search; "
              "PocketSphinx has its own", file=sys.stderr)
        return 2

    if args.baseline == "pocketsphinx" and args.integer:
        print("zeroskip eval: error: --int decodes a model with its integer reference; it does "
              "not apply to --baseline pocketsphinx", file=sys.stderr)
        return 2
    if args.baseline == "pocketsphinx":
        from model.audio import load_audio
        from model.baseline import PocketSphinxBaseline
        from model.corpus import read_manifest as rm
        from model.evaluate import evaluate
        train = manifest.with_name("train.jsonl")
        if not train.exists():
            print(f"zeroskip eval: error: the PocketSphinx language model is built from the "
                  f"training texts, and {train} does not exist", file=sys.stderr)
            return 2
        ps = PocketSphinxBaseline([e["text"] for e in rm(train)], Path("build") / "pocketsphinx")
        report = evaluate(entries, lambda e: ps.transcribe(load_audio(e["audio"])),
                          train_templates=train_templates, progress=args.progress,
                          desc="pocketsphinx")
        report["system"] = "pocketsphinx en-us + domain trigram LM"
        report["oov_words"] = len(ps.oov)
    else:
        from model.checkpoint import CheckpointError, load
        path = resolve_model(args.model)
        try:
            ckpt = load(path)
        except CheckpointError as e:
            print(f"zeroskip eval: error: {e}", file=sys.stderr)
            return 2
        except FileNotFoundError:
            print(f"zeroskip eval: error: model checkpoint {path} does not exist", file=sys.stderr)
            return 2
        model, system = ckpt.model, str(path)
        if args.integer:
            from model.intref import IntRefError, IntRNNT
            try:
                model = IntRNNT.from_model(model).decoder()
            except IntRefError as e:
                print(f"zeroskip eval: error: --int: {path}: {e}", file=sys.stderr)
                return 2
            system += " (integer reference)"
        report = evaluate_checkpoint(model, entries, beam=args.beam, progress=args.progress,
                                     train_templates=train_templates, fusion=fusion)
        if fusion is not None:
            from model.lm import describe
            system += f" + {describe(fusion.info)} {args.lm}"
            report["lm"] = {"path": str(args.lm), **fusion.info}
        report["system"] = system
    report["manifest"] = str(manifest)
    if by:
        report["by"] = {spec: breakdown(entries, report["utterances"], spec) for spec in by}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
    summary = {k: v for k, v in report.items() if k != "utterances"}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"system     {summary['system']}")
        print(f"manifest   {manifest} ({summary['all']['utterances']} utterances, "
              f"{summary['seconds']:.1f} s)")
        for key in ("all", "seen_templates", "held_out_templates"):
            if key in summary:
                r = summary[key]
                print(f"{key:18} WER {100 * r['wer']:6.2f} %   CER {100 * r['cer']:6.2f} %   "
                      f"({r['utterances']} utterances, {r['words']} words)")
        for spec, groups in summary.get("by", {}).items():
            width = max(len(spec), *(len(g["group"]) for g in groups))
            print(f"\n{spec:{width}}  utterances     WER      CER")
            for g in groups:
                print(f"{g['group']:{width}}  {g['utterances']:10}  {100 * g['wer']:5.2f} %  "
                      f"{100 * g['cer']:5.2f} %")
    return 0
