"""``zeroskip transcribe``: speech to text with a trained RNN-T checkpoint.

By default the model runs as trained in PyTorch (float, or fake-quantized for a quantized
checkpoint); with ``--int`` the integer reference :class:`model.intref.IntRNNT` runs instead:
the exact integer arithmetic the accelerator implements, on the int8 features, with the same
search (:mod:`model.decode`) on the host's ``log_softmax`` of its dequantized int8 logits.

Every file on the command line is transcribed on its own: a file that cannot be used (missing,
empty, not audio, truncated, silent) gets a one-line error on stderr and the others are still
transcribed; the exit status is then 1. Usage errors and an unusable checkpoint exit with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from ..argtypes import positive_int as _positive
from .lm import LM_BY_DEFAULT, add_lm_arguments, load_fusion

__all__ = ["register", "run", "DEFAULT_MODEL", "resolve_model"]

#: The shipped default model (4-bit weights, 80 % sparse, QAT), made by ``make model``.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent.parent / "models" / "default.ckpt"

_DESCRIPTION = """\
Transcribe audio files with the RNN-T speech model: 16 kHz log-mel features (int8, as the
accelerator receives them), the streaming encoder, then beam search (greedy with --beam 1).
Audio: WAV or FLAC at any sample rate (resampled to 16 kHz), stereo mixed down.

The beam search of the shipped default model fuses the domain character language model
models/lm.json.gz (model/lm.py; `make lm`): a hypothesis scores its RNN-T log-likelihood plus
the LM's weighted log-probability and a bonus per character. --no-lm decodes without it,
--lm FILE uses another (with any model); greedy decoding (--beam 1) never uses one.
--lm-lexicon P also takes P off each word that is not in the LM's lexicon (the words of the
training transcripts; off by default).

With --int the integer reference (model/intref.py) computes every network output instead of
PyTorch's float model: int8 activations, 4/8-bit weights, int32 accumulators, requantization by
multiplier and shift, sigmoid/tanh lookup tables and an int16 LSTM cell, exactly the arithmetic
of the accelerator (whose simulations are checked against it bit for bit). It needs a quantized
checkpoint."""

_EPILOG = """\
examples:
  zeroskip transcribe examples/*.wav
  zeroskip transcribe --json --nbest 3 examples/01.wav
  zeroskip transcribe --model build/models/fp32.ckpt --beam 1 speech.flac
  zeroskip transcribe --int --beam 1 examples/01-weather.wav
  zeroskip transcribe --no-lm --beam 8 examples/02-question.wav
"""


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="CKPT", default=None,
                   help=f"model checkpoint (default: the shipped {DEFAULT_MODEL.parent.name}/"
                        f"{DEFAULT_MODEL.name})")


def resolve_model(spec: str | None) -> Path:
    """The checkpoint path for ``--model`` (``None``: the shipped default)."""
    return Path(spec) if spec else DEFAULT_MODEL


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``transcribe`` subcommand to ``subparsers``; return its parser."""
    p = subparsers.add_parser("transcribe", help="transcribe audio files with the RNN-T model",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="WAV or FLAC files")
    add_model_argument(p)
    p.add_argument("--beam", type=_positive, default=4, metavar="N",
                   help="beam width (default 4; 1 is greedy decoding)")
    p.add_argument("--nbest", type=_positive, default=None, metavar="N",
                   help="hypotheses to list, at most the beam width (default: all the beam's, "
                        "up to 4)")
    add_lm_arguments(p, default_on=LM_BY_DEFAULT)
    p.add_argument("--int", dest="integer", action="store_true",
                   help="run the integer reference (the accelerator's exact int8/int16/int32 "
                        "arithmetic, model/intref.py) instead of the float PyTorch model; needs "
                        "a quantized (4- or 8-bit) checkpoint")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line: audio, text, nbest [{text, score}], lm "
                        "(order, weight, bonus, or null), duration, seconds")
    p.set_defaults(handler=run)
    return p


def _err(msg: str) -> None:
    print(f"zeroskip transcribe: error: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip transcribe``; returns the exit status."""
    nbest = args.nbest if args.nbest is not None else min(args.beam, 4)
    if nbest > args.beam:
        _err(f"--nbest {nbest} is more than the beam width {args.beam}; raise --beam or "
             f"lower --nbest")
        return 2
    import torch

    from model.audio import AudioError, check_not_silent, load_audio
    from model.checkpoint import CheckpointError, load
    from model.decode import beam_search
    from model.frontend import dequantize_features, features_int8
    from model.intref import IntRefError, IntRNNT

    path = resolve_model(args.model)
    if not path.exists():
        hint = " (make it with `make model`)" if args.model is None else ""
        _err(f"model checkpoint {path} does not exist{hint}")
        return 2
    try:
        model = load(path).model
    except CheckpointError as e:
        _err(str(e))
        return 2
    if args.integer:
        try:
            model = IntRNNT.from_model(model).decoder()
        except IntRefError as e:
            _err(f"--int: {path}: {e}")
            return 2
    from model.lm import LMError
    try:
        fusion = load_fusion(args, default_model=args.model is None)
    except LMError as e:
        _err(str(e))
        return 2

    lm_info = None if fusion is None else fusion.info
    failed = 0
    for name in args.audio:
        t0 = time.perf_counter()
        try:
            audio = load_audio(name)
            check_not_silent(audio, name)
        except AudioError as e:
            _err(str(e))
            failed += 1
            continue
        feats = features_int8(torch.from_numpy(audio))
        if not args.integer:
            feats = dequantize_features(feats)         # == model.frontend.features(audio)
        if feats.shape[0] == 0:
            _err(f"{name} is too short to transcribe ({len(audio) / 16000:.3f} s)")
            failed += 1
            continue
        hyps = beam_search(model, feats, beam=args.beam, nbest=nbest, fusion=fusion)
        seconds = time.perf_counter() - t0
        text = hyps[0][0]
        if args.json:
            print(json.dumps({"audio": name, "text": text,
                              "nbest": [{"text": t, "score": s} for t, s in hyps],
                              "lm": lm_info,
                              "duration": len(audio) / 16000, "seconds": seconds}), flush=True)
        else:
            print(f"{name}: {text}", flush=True)
            if nbest > 1:
                for i, (t, s) in enumerate(hyps, 1):
                    print(f"  {i}. {s:9.3f}  {t}")
    return 1 if failed else 0
