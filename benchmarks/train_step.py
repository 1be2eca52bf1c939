"""Benchmark: one training step of the default RNN-T, chunked lattice joint against autograd.

    .venv/bin/python benchmarks/train_step.py [--batch 32 --frames 100 --labels 40]
        [--repeat 5] [--threads 1] [--json]

Times ``RNNT.loss`` forward + backward on a random batch of the default preset, fp32 and 4-bit
QAT (fake-quantized weights and activations), with the training lattice computed two ways,
alternated within one run: by :class:`model.rnnt._LatticeJoint` (what training uses: the joint
network computed and differentiated a few frames at a time, its activations never kept whole)
and by autograd through :meth:`model.rnnt.RNNT.join` on the broadcast lattice (what it replaced).
Reports the median seconds per step of each and their ratio. Both give the same loss.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from model.rnnt import RNNT, rnnt  # noqa: E402


def _autograd_lattice(model: RNNT, feats, lengths, targets):
    """``RNNT._lattice`` as it was: autograd through ``join`` on the broadcast lattice."""
    enc, pred = model._lattice_inputs(feats, lengths, targets)
    return model.join(enc[:, :, None, :], pred[:, None, :, :]), enc


def measure(*, batch: int, frames: int, labels: int, repeat: int, quant: bool) -> dict:
    torch.manual_seed(0)
    model = rnnt(preset="default")
    if quant:
        model.set_quantization(w_bits=4, activations=True)
    model.train()
    feats = torch.randn(batch, frames, model.hparams["feature_dim"])
    lengths = torch.full((batch,), frames)
    targets = torch.randint(1, model.vocab_size, (batch, labels))
    target_lengths = torch.full((batch,), labels)
    ways = {"chunked": RNNT._lattice, "autograd": _autograd_lattice}
    seconds = {k: [] for k in ways}
    losses = {}
    for _ in range(repeat):
        for name, lattice in ways.items():
            model.zero_grad()
            model._lattice = lattice.__get__(model)
            t = time.perf_counter()
            loss = model.loss(feats, lengths, targets, target_lengths)
            loss.backward()
            seconds[name].append(time.perf_counter() - t)
            losses[name] = loss.item()
        del model._lattice
    med = {k: statistics.median(v) for k, v in seconds.items()}
    return {"quant": quant, "seconds": seconds, "median": med, "loss": losses,
            "speedup": med["autograd"] / med["chunked"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--batch", type=int, default=32, help="utterances (default 32)")
    ap.add_argument("--frames", type=int, default=100, help="encoder frames (default 100: 3 s)")
    ap.add_argument("--labels", type=int, default=40, help="labels per utterance (default 40)")
    ap.add_argument("--repeat", type=int, default=5, help="steps of each way (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    for name in ("batch", "frames", "labels", "repeat", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    torch.set_num_threads(args.threads)
    runs = [measure(batch=args.batch, frames=args.frames, labels=args.labels,
                    repeat=args.repeat, quant=q) for q in (False, True)]
    if args.json:
        print(json.dumps({"args": vars(args), "runs": runs}))
        return 0
    print(f"batch {args.batch} x {args.frames} frames x {args.labels} labels, "
          f"{args.threads} thread(s), median of {args.repeat}")
    for r in runs:
        print(f"{'4-bit QAT' if r['quant'] else 'fp32':9}  chunked {r['median']['chunked']:.3f} s"
              f"  autograd {r['median']['autograd']:.3f} s  -> {r['speedup']:.2f}x  "
              f"(loss {r['loss']['chunked']:.4f} / {r['loss']['autograd']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
