"""``zeroskip corpus``: synthesize the voice-assistant speech corpus (see ``model/corpus.py``).

Wiring: ``register(subparsers)`` adds the subcommand and sets ``handler`` on its namespace, so
``sim/cli.py`` runs ``args.handler(args)`` and exits with the integer it returns (0 success,
2 bad request or failure, with a one-line message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from ..argtypes import positive_int as _positive

__all__ = ["register", "run"]

_DESCRIPTION = """\
Synthesize a voice-assistant speech corpus with eSpeak NG (from the espeakng-loader package):
calls and messages, smart-home devices in rooms, timers, alarms and reminders, weather in cities,
music, shopping lists, volume and playback, everyday questions. Every English eSpeak voice with
many voice variants, random speed and pitch, additive noise (white, pink, brown, babble, hum) at
5-30 dB SNR or clean, random leading and trailing silence; 16 kHz mono 16-bit WAV.

Writes DIR/wav/<id>.wav, DIR/{train,dev,test}.jsonl (one JSON object per utterance: id, audio,
text, duration, voice, speed, pitch, snr_db, template, split, ...) and DIR/corpus.json
(parameters, voice and template assignment, counts). Splits are 80/10/10 by duration, disjoint by
voice and by sentence; dev and test also use templates held out of training. The same --seed
gives the same corpus byte for byte; rerunning skips the WAV files already complete."""

_EPILOG = """\
examples:
  zeroskip corpus --hours 0.01 --out build/corpus/tiny        # about fifteen utterances
  zeroskip corpus --hours 20 --out build/corpus/main --seed 0  # the training corpus
  zeroskip corpus --examples 8 --out examples                # the shipped example WAVs

--examples N writes N short utterances of the test split (unseen voices and sentences, some
from held-out templates) as DIR/NN-intent.wav, with DIR/manifest.jsonl (for `zeroskip eval
--manifest`) and DIR/transcripts.txt."""


def _hours(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of hours")
    return v


def _word_fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not a fraction in [0, 1)")
    return v


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``corpus`` subcommand to ``subparsers`` (from ``add_subparsers``); return it."""
    p = subparsers.add_parser(
        "corpus", help="synthesize the voice-assistant speech corpus (eSpeak NG)",
        description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--hours", type=_hours, metavar="H",
                      help="total audio over all splits, in hours (fractions like 0.002 work)")
    what.add_argument("--examples", type=_positive, metavar="N",
                      help="instead: write N example utterances of the test split (at most 50)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of sentences, voices, parameters and noise (default 0)")
    p.add_argument("--word-sequences", type=_word_fraction, default=0.0, metavar="F",
                   help="make a fraction F (0 <= F < 1) of the training utterances random "
                        "sequences of the training split's words instead of template "
                        "sentences (dev and test unchanged; default 0)")
    p.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="synthesis processes (default: all CPUs available)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (corpus.json plus run statistics) instead of "
                        "a table")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip corpus``; returns the exit status."""
    from model.corpus import CorpusError, generate_corpus
    from model.espeak import EspeakError

    if args.examples is not None:
        return _examples(args)
    try:
        summary = generate_corpus(args.out, hours=args.hours, seed=args.seed,
                                  workers=args.workers, progress=args.progress,
                                  word_sequences=args.word_sequences)
    except (CorpusError, EspeakError) as e:
        print(f"zeroskip corpus: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zeroskip corpus: interrupted; rerun the same command to finish (complete files "
              "are kept)", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary)
    return 0


def _examples(args: argparse.Namespace) -> int:
    from model.corpus import CorpusError, make_examples
    from model.espeak import EspeakError

    try:
        rows = make_examples(args.out, count=args.examples, seed=args.seed)
    except (CorpusError, EspeakError) as e:
        print(f"zeroskip corpus: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"out_dir": str(args.out), "examples": rows}))
    else:
        for r in rows:
            held = "  (held-out template)" if r["heldout"] else ""
            print(f"{args.out}/{r['audio']:18} {r['duration']:5.2f} s  {r['text']}{held}")
    return 0


def _print(s: dict) -> None:
    run_ = s["run"]
    print(f"corpus     {run_['out_dir']}  seed {s['seed']}, {s['hours']:.4f} h of audio "
          f"({s['hours_requested']} h requested), {s['sample_rate']} Hz")
    for split, v in s["splits"].items():
        print(f"{split:10} {v['utterances']:7d} utterances {v['hours']:9.4f} h  "
              f"{v['voices']:4d} voices  {v['templates']:4d} templates  "
              f"{v['heldout_utterances']} from held-out templates")
    t = s["templates"]
    print(f"templates  {t['total']} ({len(t['heldout'])} held out of training)")
    vo = s["voices"]
    print(f"voices     {len(vo['languages'])} English language voices x {vo['variants']} variants "
          f"({len(vo['excluded_variants'])} excluded); eSpeak NG {s['versions']['espeak_ng']}")
    speed = run_["audio_seconds_per_wall_second"]
    print(f"run        {run_['synthesized']} synthesized, {run_['skipped']} already there; "
          f"{run_['wall_seconds']:.1f} s with {run_['workers']} workers"
          + (f", {speed:.0f} s of audio per second" if speed else ""))
