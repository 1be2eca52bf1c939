"""``zeroskip curves``: compare training runs: dev WER per epoch and training loss, one PNG."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run", "read_run", "plot_runs"]

_DESCRIPTION = """\
Compare training runs. Each RUN is a checkpoint written by `zeroskip train --out CKPT`: its
training state CKPT.last (written while training, and kept after it) holds the run's
configuration and history. Prints, per run, what sets its configuration apart from the other
runs', its epochs, its best and last dev WER, and the dev WER of every epoch side by side; with
--out, also plots the training loss (running mean) by optimizer step and the dev WER by epoch
of every run in one PNG. Works while the runs are still training (their finished epochs)."""

_EPILOG = """\
examples:
  zeroskip curves build/models/fp32-more.ckpt build/models/fp32-dropout.ckpt --out build/ab.png
  zeroskip curves build/models/qat4-s*.ckpt --json
"""

#: Optimizer steps in the training loss's running mean.
LOSS_WINDOW = 50

#: Training-configuration keys never worth naming in a label (they do not change the result).
_NOT_LABELS = ("epochs",)


class CurvesError(Exception):
    """A run cannot be read (the message is one line)."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``curves`` subcommand to ``subparsers``; return its parser."""
    p = subparsers.add_parser("curves", help="compare training runs (dev WER, loss; a PNG)",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="checkpoints of `zeroskip train --out` (their .last files are read)")
    p.add_argument("--out", metavar="PNG", help="write the comparison plot there")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)
    return p


def read_run(path) -> dict:
    """``{path, config, epochs, steps, loss}`` of the training run behind checkpoint ``path``
    (``CKPT`` or ``CKPT.last``). Raises :class:`CurvesError`."""
    from model.checkpoint import CheckpointError, load

    path = Path(path)
    last = path if path.name.endswith(".last") else Path(str(path) + ".last")
    if not last.exists():
        raise CurvesError(f"{last} does not exist: curves reads the training state that "
                          f"`zeroskip train --out {path}` writes beside the checkpoint")
    try:
        state = load(last, train_state=True).train_state
    except CheckpointError as e:
        raise CurvesError(str(e)) from None
    if not state or "history" not in state or "config" not in state:
        raise CurvesError(f"{last} holds no training history")
    h = state["history"]
    name = last.name[:-len(".last")]
    return {"path": str(last.with_name(name)), "name": name, "config": dict(state["config"]),
            "epochs": list(h.get("epochs", [])), "steps": list(h.get("steps", [])),
            "loss": list(h.get("loss", [])), "step": state.get("step")}


def _labels(runs: list[dict]) -> list[str]:
    """Each run's name plus the configuration values in which the runs differ."""
    keys = sorted({k for r in runs for k in r["config"]} - set(_NOT_LABELS))
    differ = [k for k in keys if len({json.dumps(r["config"].get(k), sort_keys=True)
                                       for r in runs}) > 1]
    names = [r["name"] for r in runs]
    out = []
    for r in runs:
        parts = [f"{k}={r['config'].get(k)}" for k in differ if k != "init_from"]
        label = r["name"] if names.count(r["name"]) == 1 else r["path"]
        out.append(label + (f" ({', '.join(parts)})" if parts else ""))
    return out


def _summary(run: dict) -> dict:
    ep = [e for e in run["epochs"] if e.get("dev_wer") is not None]
    best = min(ep, key=lambda e: e["dev_wer"]) if ep else None
    return {"epochs_done": len(run["epochs"]), "epochs_planned": run["config"].get("epochs"),
            "steps": run["step"],
            "best_dev_wer": best["dev_wer"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "last_dev_wer": ep[-1]["dev_wer"] if ep else None,
            "dev_wer": {e["epoch"]: e["dev_wer"] for e in ep}}


def plot_runs(runs: list[dict], labels: list[str], path) -> None:
    """Training loss (running mean) by step and dev WER by epoch of every run, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (r, label) in enumerate(zip(runs, labels)):
        color = f"C{i % 10}"
        loss = r["loss"]
        if loss:   # the same window for every run, so their curves compare
            mean = [sum(loss[max(0, j - LOSS_WINDOW + 1):j + 1]) / min(j + 1, LOSS_WINDOW)
                    for j in range(len(loss))]
            a.plot(r["steps"], mean, color=color, label=label)
        ep = [e for e in r["epochs"] if e.get("dev_wer") is not None]
        if ep:
            b.plot([e["epoch"] for e in ep], [100 * e["dev_wer"] for e in ep], "o-",
                   color=color, label=label)
    a.set_xlabel("optimizer step")
    a.set_ylabel(f"training loss, mean of {LOSS_WINDOW} steps (nats / utterance)")
    a.set_yscale("log")
    b.set_xlabel("epoch")
    b.set_ylabel("dev WER (%)")
    b.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for ax in (a, b):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip curves``; returns the exit status."""
    try:
        runs = [read_run(p) for p in args.runs]
    except CurvesError as e:
        print(f"zeroskip curves: error: {e}", file=sys.stderr)
        return 2
    labels = _labels(runs)
    summaries = [_summary(r) for r in runs]
    if args.out:
        plot_runs(runs, labels, args.out)
    if args.json:
        print(json.dumps({"runs": [dict(s, path=r["path"], label=label, config=r["config"])
                                   for r, s, label in zip(runs, summaries, labels)],
                          "plot": args.out}))
        return 0
    for i, (label, s) in enumerate(zip(labels, summaries)):
        best = ("no dev WER yet" if s["best_dev_wer"] is None else
                f"best dev WER {100 * s['best_dev_wer']:.2f} % (epoch {s['best_epoch']}), "
                f"last {100 * s['last_dev_wer']:.2f} %")
        print(f"[{i + 1}] {label}: {s['epochs_done']}/{s['epochs_planned']} epochs, {best}")
    epochs = sorted({e for s in summaries for e in s["dev_wer"]})
    if epochs:
        print("\nepoch  " + "  ".join(f"[{i + 1}]".rjust(7) for i in range(len(runs))))
        for e in epochs:
            cells = [f"{100 * s['dev_wer'][e]:6.2f}%" if e in s["dev_wer"] else "      -"
                     for s in summaries]
            print(f"{e:5}  " + "  ".join(cells))
    if args.out:
        print(f"\nplot: {args.out}")
    return 0
