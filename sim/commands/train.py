"""``zeroskip train``: train the RNN-T on a corpus (see ``model/train.py``).

Wiring: ``register(subparsers)`` adds the subcommand and sets ``handler`` on its namespace, so
``sim/cli.py`` runs ``args.handler(args)`` and exits with the integer it returns (0 success,
2 bad request or failure, 130 interrupted; one-line message on stderr).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from ..argtypes import nonnegative_float as _nonnegative_float
from ..argtypes import nonnegative_int as _nonnegative
from ..argtypes import positive_float as _positive_float
from ..argtypes import positive_int as _positive

__all__ = ["register", "run"]

_DESCRIPTION = """\
Train the streaming RNN-T (LSTM encoder, prediction network, joint) on a corpus made by
`zeroskip corpus`: fp32, or with quantization-aware training (fake-quantized 8- or 4-bit
per-row weights and int8 activations, plus absolute-cosine regularization) and gradual magnitude
pruning to a target sparsity (Zhu & Gupta's cubic schedule).

Writes CKPT (the best epoch by dev WER among those that meet the final bit width and sparsity),
CKPT.last (the latest training state: rerunning the same command resumes from it; Ctrl-C or
SIGTERM, e.g. `kill PID` of a background run, saves it before the next step and exits 130 / 143;
a second one stops at once) and the loss / dev-WER curves beside CKPT as a .png. Features are
computed once and cached in build/features/."""

_EPILOG = """\
examples:
  zeroskip train --corpus build/corpus/tiny --out build/tiny.ckpt --preset tiny --epochs 2
  zeroskip train --corpus build/corpus/main --out build/fp32.ckpt --epochs 20
  zeroskip train --corpus build/corpus/main --out build/q4s80.ckpt --w-bits 4 --sparsity 0.8
  zeroskip train --corpus build/corpus/main --out build/q4s80ft.ckpt --w-bits 4 \\
      --sparsity 0.8 --init build/fp32.ckpt --epochs 8      # fine-tune a trained fp32 model
  zeroskip train --corpus build/corpus/main --out build/ptq8.ckpt --w-bits 8 --no-qat \\
      --init build/fp32.ckpt --epochs 0                     # post-training quantization only
"""


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"{v} must be between 0 and 1 (exclusive)")
    return v


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers`` (from ``add_subparsers``); return it."""
    from model.qat import ACOS_LAMBDA

    p = subparsers.add_parser(
        "train", help="train the RNN-T (fp32, QAT, gradual pruning); resumable",
        description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, metavar="DIR",
                   help="corpus directory with train.jsonl (and dev.jsonl for model selection)")
    p.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write")
    p.add_argument("--preset", choices=("tiny", "default"), default="default",
                   help="model size (default: default, 1.98 M parameters)")
    p.add_argument("--epochs", type=_nonnegative, default=20, metavar="N",
                   help="passes over the training set (default 20; 0 with --init and --no-qat: "
                        "post-training quantization only)")
    p.add_argument("--batch-size", type=_positive, default=32, metavar="N",
                   help="utterances per batch at most (default 32)")
    p.add_argument("--batch-frames", type=_positive, default=4000, metavar="N",
                   help="padded 30 ms frames per batch at most (default 4000)")
    p.add_argument("--lr", type=_positive_float, default=1.5e-3,
                   help="peak Adam learning rate (default 1.5e-3)")
    p.add_argument("--w-bits", type=int, choices=(4, 8), default=None,
                   help="weight bits of the result (default: fp32 weights and activations)")
    p.add_argument("--sparsity", type=_fraction, default=None, metavar="S",
                   help="final fraction of zero weights in every matrix (gradual pruning)")
    p.add_argument("--qat", action=argparse.BooleanOptionalAction, default=True,
                   help="with --w-bits: quantization-aware training (default), or "
                        "--no-qat for fp32 training then post-training quantization")
    p.add_argument("--acos-lambda", type=_nonnegative_float, default=ACOS_LAMBDA, metavar="L",
                   help=f"final weight of the absolute-cosine regularizer (default {ACOS_LAMBDA})")
    p.add_argument("--ctc-weight", type=float, default=0.0, metavar="W",
                   help="weight of an auxiliary CTC loss on the encoder output (a training-only "
                        "head; speeds up learning alignments), 0 to 1 (default 0: off)")
    p.add_argument("--dropout", type=float, default=0.0, metavar="P",
                   help="dropout on the encoder layers' outputs and the prediction network's "
                        "embeddings and outputs while training, 0 <= P < 1 (default 0: off)")
    p.add_argument("--stop-after-epoch", type=_positive, default=None, metavar="N",
                   help="stop (resumably) once N epochs are done, with the learning-rate and "
                        "pruning schedules still planned over --epochs: a long schedule cut "
                        "short, reproducibly (rerun without it to go on)")
    p.add_argument("--init", metavar="CKPT", default=None,
                   help="start from this checkpoint's weights (fine-tuning; same preset)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed (default 0)")
    p.add_argument("--threads", type=_positive, default=None, metavar="N",
                   help="PyTorch threads (default: PyTorch's choice)")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false",
                   help="no time / frequency masking")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over even if CKPT.last exists")
    p.add_argument("--dev-limit", type=_positive, default=None, metavar="N",
                   help="evaluate only the first N dev utterances each epoch")
    p.add_argument("--json", action="store_true", help="print one JSON object (the summary)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")
    p.set_defaults(handler=run)
    return p


class _StopOnSignal:
    """SIGTERM, or a first Ctrl-C, stops training cleanly between two optimizer steps.

    ``requested`` is :func:`model.train.fit`'s ``interrupt``: the loop saves ``OUT.last`` and
    stops before its next step, so the state is exact (resuming gives the uninterrupted run).
    A second signal stops at once, wherever the run is (as Ctrl-C always did). ``kill PID`` of
    a background run (``nohup``, which ignores Ctrl-C: that stays ignored) thus loses nothing.
    """

    def __init__(self, out):
        self.out, self.signum, self._old = out, None, {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:          # not the main thread: keep the default behaviour
                pass

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"zeroskip train: {signal.Signals(signum).name}: stopping before the next step "
              f"(saving {self.out}.last); a second one stops at once", file=sys.stderr)

    def requested(self) -> bool:
        return self.signum is not None

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip train``; returns the exit status."""
    from model.checkpoint import CheckpointError
    from model.corpus import CorpusError
    from model.train import TrainError, train

    log = (lambda *a, **k: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    stop = _StopOnSignal(args.out)
    try:
        summary = train(manifest_dir=args.corpus, out=args.out, preset=args.preset,
                        epochs=args.epochs, batch_size=args.batch_size,
                        batch_frames=args.batch_frames, lr=args.lr, w_bits=args.w_bits,
                        sparsity=args.sparsity, qat=args.qat, init_from=args.init,
                        resume=args.resume, progress=args.progress, seed=args.seed,
                        spec_augment=args.spec_augment, threads=args.threads,
                        dev_limit=args.dev_limit, stop_after_epoch=args.stop_after_epoch,
                        acos_lambda=args.acos_lambda,
                        ctc_weight=args.ctc_weight, dropout=args.dropout, log=log,
                        interrupt=stop.requested)
    except (TrainError, CheckpointError, CorpusError) as e:
        print(f"zeroskip train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zeroskip train: interrupted; rerun the same command to resume from "
              f"{args.out}.last", file=sys.stderr)
        return 128 + (stop.signum or signal.SIGINT)
    finally:
        stop.restore()
    summary.pop("history", None)
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary)
    return 0


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _print(s: dict) -> None:
    print(f"checkpoint {s['out']}  ({s['parameters']:,} parameters)")
    print(f"training   {s['epochs']} epochs, {s['steps']} steps, {s['seconds']:.0f} s"
          + (" (stopped early; rerun to resume)" if s.get("stopped") else ""))
    print(f"best       epoch {s['best_epoch']}, dev WER {_pct(s['best_dev_wer'])}"
          + (f"; after post-training quantization {_pct(s['ptq_dev_wer'])}"
             if "ptq_dev_wer" in s else ""))
    fp = s.get("footprint")
    if fp:
        print(f"footprint  sparsity {s['sparsity']:.3f}; {fp['bytes']:,} bytes compressed "
              f"({fp['bits_per_weight']:.2f} bits/weight) vs {fp['fp32_bytes']:,} fp32 bytes "
              f"= 1/{1 / fp['ratio']:.1f}")
