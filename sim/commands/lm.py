"""``zeroskip lm``: build the domain character n-gram language model (see ``model/lm.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..argtypes import positive_int as _positive

__all__ = ["register", "run", "add_lm_arguments", "load_fusion", "DEFAULT_LM", "LM_BY_DEFAULT"]

#: The shipped language model, built by ``make lm`` from the training corpus's transcripts.
DEFAULT_LM = Path(__file__).resolve().parent.parent.parent / "models" / "lm.json.gz"
#: Whether ``transcribe`` and ``simulate`` fuse :data:`DEFAULT_LM` into the beam search of the
#: shipped default model unless told otherwise (``--no-lm``).
LM_BY_DEFAULT = True

_DESCRIPTION = """\
Build a character n-gram language model (interpolated Kneser-Ney) of the transcripts of a
corpus's training split, for shallow fusion with the RNN-T's beam search (`zeroskip transcribe
--lm`, `zeroskip eval --lm`): the domain knowledge PocketSphinx gets from its trigram LM. Only
the training split's texts are used, so dev and test sentences (and held-out templates) stay
unseen."""

_EPILOG = """\
examples:
  zeroskip lm --corpus build/corpus/main --out models/lm.json.gz
  zeroskip lm --corpus build/corpus/main --order 7 --weight 0.3 --out build/lm7.json.gz --json

Fusion's defaults (order, weight, bonus) were tuned on the dev split with
benchmarks/lm_tune.py; --lm-weight/--lm-bonus/--lm-lexicon of the decoding commands override
the weight, bonus and lexicon penalty a model file records. The model also lists the words of
the transcripts (its lexicon); the penalty for words outside it is off unless --lexicon sets it
(2 was best on the dev split: see the README).
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``lm`` subcommand to ``subparsers``; return its parser."""
    p = subparsers.add_parser("lm", help="build the domain character language model",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, metavar="DIR",
                   help="a corpus directory (its train.jsonl is read)")
    p.add_argument("--out", required=True, metavar="FILE", help="the model to write (.json.gz)")
    p.add_argument("--order", type=_positive, default=None, metavar="N",
                   help="n-gram order in characters (default: model.lm.DEFAULT_ORDER)")
    p.add_argument("--weight", type=float, default=None, metavar="W",
                   help="fusion weight recorded in the model, used unless --lm-weight overrides "
                        "it (default: model.lm.DEFAULT_WEIGHT)")
    p.add_argument("--bonus", type=float, default=None, metavar="B",
                   help="per-character bonus recorded in the model (default: "
                        "model.lm.DEFAULT_BONUS)")
    p.add_argument("--lexicon", type=float, default=None, metavar="P",
                   help="lexicon penalty recorded in the model: the score a hypothesis loses "
                        "for each word not in the training transcripts (default: "
                        "model.lm.DEFAULT_LEXICON, off)")
    p.add_argument("--json", action="store_true", help="print a summary as one JSON object")
    p.set_defaults(handler=run)
    return p


def add_lm_arguments(p: argparse.ArgumentParser, *, default_on: bool) -> None:
    """``--lm FILE``/``--no-lm``, ``--lm-weight`` and ``--lm-bonus`` for a decoding command."""
    if default_on:
        p.add_argument("--lm", metavar="FILE", default=None,
                       help=f"domain language model fused into the beam search (default: the "
                            f"shipped {DEFAULT_LM.parent.name}/{DEFAULT_LM.name} when the model "
                            f"is the shipped default)")
        p.add_argument("--no-lm", dest="no_lm", action="store_true",
                       help="decode without a language model")
    else:
        p.add_argument("--lm", metavar="FILE", default=None,
                       help=f"fuse a domain language model into the beam search (e.g. "
                            f"{DEFAULT_LM.parent.name}/{DEFAULT_LM.name}); needs --beam > 1")
    p.add_argument("--lm-weight", type=float, default=None, metavar="W",
                   help="weight of the language model's log-probabilities (default: the "
                        "model file's tuned weight)")
    p.add_argument("--lm-bonus", type=float, default=None, metavar="B",
                   help="score added per emitted character (default: the model file's)")
    p.add_argument("--lm-lexicon", type=float, default=None, metavar="P",
                   help="score taken off each word that is not in the language model's "
                        "lexicon, the training transcripts' words (default: the model file's; "
                        "0 is off)")


def load_fusion(args, *, default_model: bool):
    """The :class:`model.lm.Fusion` the parsed ``args`` ask for, or ``None``.

    An explicit ``--lm FILE`` is used (and needs ``--beam`` 2 or more); otherwise, for the
    shipped default model with ``--beam`` 2 or more, :data:`DEFAULT_LM` is, when the command
    turns it on by default and it exists, unless ``--no-lm``. Greedy decoding uses none.
    Raises :class:`model.lm.LMError` with a one-line message."""
    from model.lm import CharLM, LMError
    path = getattr(args, "lm", None)
    no_lm = getattr(args, "no_lm", False)
    if path is not None and no_lm:
        raise LMError("--lm FILE and --no-lm contradict each other")
    if path is not None and args.beam < 2:
        raise LMError("a language model is fused into the beam search: use --beam 2 or more")
    if path is None and hasattr(args, "no_lm") and not no_lm and default_model \
            and args.beam >= 2 and DEFAULT_LM.exists():
        path = DEFAULT_LM
    if path is None:
        if any(getattr(args, a, None) is not None
               for a in ("lm_weight", "lm_bonus", "lm_lexicon")):
            raise LMError("--lm-weight/--lm-bonus/--lm-lexicon given, but no language model is "
                          "used (it needs --lm FILE, or the shipped default model with --beam 2 "
                          "or more)")
        return None
    return CharLM.load(path).fusion(getattr(args, "lm_weight", None),
                                    getattr(args, "lm_bonus", None),
                                    getattr(args, "lm_lexicon", None))


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip lm``; returns the exit status."""
    from model.corpus import CorpusError, read_manifest
    from model.lm import (DEFAULT_BONUS, DEFAULT_LEXICON, DEFAULT_ORDER, DEFAULT_WEIGHT, CharLM,
                          LMError)
    train = Path(args.corpus) / "train.jsonl"
    try:
        texts = [e["text"] for e in read_manifest(train)]
        lm = CharLM.train(texts, order=DEFAULT_ORDER if args.order is None else args.order,
                          weight=DEFAULT_WEIGHT if args.weight is None else args.weight,
                          bonus=DEFAULT_BONUS if args.bonus is None else args.bonus,
                          lexicon=DEFAULT_LEXICON if args.lexicon is None else args.lexicon)
    except (CorpusError, FileNotFoundError) as e:
        print(f"zeroskip lm: error: {e}", file=sys.stderr)
        return 2
    except LMError as e:
        print(f"zeroskip lm: error: {train}: {e}", file=sys.stderr)
        return 2
    lm.save(args.out)
    size = Path(args.out).stat().st_size
    summary = {"out": str(args.out), "order": lm.order, "sentences": lm.sentences,
               "weight": lm.weight, "bonus": lm.bonus, "lexicon": lm.lexicon,
               "ngrams": len(lm.ngrams), "words": len(lm.words), "bytes": size}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.out}: order {lm.order}, {lm.sentences} transcripts, {len(lm.ngrams)} "
              f"{lm.order}-grams, {len(lm.words)} words, {size:,} bytes")
    return 0
