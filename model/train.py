"""Training: fp32, quantization-aware (fake quantization + ACos regularization) and gradual pruning.

:func:`train` trains an :class:`~model.rnnt.RNNT` on a corpus directory (``train.jsonl`` and
``dev.jsonl``, see :mod:`model.corpus`) and writes

* ``OUT``: the best checkpoint (lowest dev WER among the epochs that satisfy the final
  constraints: quantization on and pruning at its target), without optimizer state;
* ``OUT.last``: the latest training state (model, optimizer, step, epoch, position inside the
  epoch, RNG states, history) — rerunning the same command resumes from it;
* ``OUT`` with suffix ``.png``: the training-loss and dev-WER curves.

Every file is written to a temporary file and renamed, so an interrupted run (Ctrl-C, a killed
process) leaves the last consistent state; Ctrl-C also saves ``OUT.last`` before exiting.
Training is deterministic given the seed and the thread count: an interrupted and resumed run
produces the same weights as an uninterrupted one.

Data
----
Features are :func:`model.frontend.features_int8` codes, computed once per utterance and cached
in ``build/features/<split>-<digest>.pt``; the digest covers the manifest's bytes and the front
end's constants, so a new corpus or front end recomputes them. Batches are length-sorted and
bucketed (at most ``batch_size`` utterances and ``batch_frames`` padded frames each), the order of
the buckets shuffled every epoch. Optional SpecAugment (on by default): 2 frequency masks of up
to 8 of the 64 mel bins (the same bins in all three stacked 10 ms frames) and 2 time masks of
up to 5 frames (0.15 s) and 10 % of the utterance, filled with the utterance's mean feature.
The first layer's normalization (per-feature mean and standard deviation) is computed from the
training features.

Optimization
------------
Adam (betas 0.9, 0.98), linear warm-up over ``warmup_steps`` then cosine decay to
``min_lr_ratio * lr`` at the last step; the gradient norm is clipped to ``clip_norm``. The loss is
the mean per-utterance RNN-T negative log-likelihood (:func:`model.rnnt_loss.rnnt_loss`) plus
``lambda(t)`` times the ACos regularizer (:mod:`model.qat`) while quantization-aware training is on,
plus, with ``ctc_weight > 0``, that weight times a CTC loss of the encoder output through a
training-only ``J -> V`` head (kept in ``CKPT.last``, not in the model): the usual auxiliary loss
that makes an RNN-T encoder learn alignments sooner (it adds ~1 % to a step's time). With
``dropout > 0``, that fraction of the encoder layers' outputs and of the prediction network's
embeddings and LSTM outputs is zeroed at random in every training step (:attr:`model.rnnt.RNNT.
dropout`; off in evaluation, so dev WER and the saved model are unaffected).

Schedules, as fractions of the total optimizer steps ``S = epochs * batches per epoch``
-----------------------------------------------------------------------------------------------
* QAT (``w_bits`` set, ``qat=True``): fp32 until ``qat_start`` (default 0.25 S, 0 when
  fine-tuning from ``init_from``), then weights fake-quantized to ``w_bits`` and activations to
  int8; ACos ``lambda`` ramps linearly from 0 to ``acos_lambda`` over ``acos_ramp`` (0.25 S).
* Gradual pruning (``sparsity`` set): cubic schedule from ``prune_start`` (0.2 S; 0 when
  fine-tuning) to ``prune_end`` (0.7 S; 0.6 when fine-tuning), masks updated every
  ``prune_every`` steps (default: 100 updates over the ramp) and applied after every step.
* ``w_bits`` with ``qat=False``: fp32 training (with pruning if asked), then post-training
  quantization of the best checkpoint (:func:`model.qat.quantize_post_training`); the saved model
  is the quantized one.

The best checkpoint is only chosen among epochs that end after every schedule has reached its
final value, so a lightly pruned or unquantized early epoch can never be shipped as "best".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import frontend
from .checkpoint import CheckpointError, atomic_write, load, load_into, read_header, save
from .decode import MAX_SYMBOLS, greedy_batch
from .prune import GradualPruner, sparsity_report
from .qat import ACOS_LAMBDA, acos_lambda, acos_regularizer, quantize_post_training
from .rnnt import PRESETS, RNNT, count_parameters, rnnt
from .text import encode

__all__ = ["TrainConfig", "TrainError", "UtteranceSet", "train", "fit", "load_split",
           "make_batches", "collate", "spec_augment", "lr_at", "evaluate_wer", "plot_curves",
           "benchmark_step", "BUILD_DIR"]

#: Where generated files go by default (git-ignored).
BUILD_DIR = Path(__file__).resolve().parent.parent / "build"
_FEATURE_CACHE_VERSION = 1


class TrainError(RuntimeError):
    """Training cannot start or continue (the message says why and what to do)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved with the training state).

    Fractions (``qat_start``, ``acos_ramp``, ``prune_start``, ``prune_end``) are of the total
    optimizer steps; ``None`` picks the defaults in the module docstring.
    """

    preset: str = "default"
    model: dict = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 32
    batch_frames: int = 4000
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 300
    clip_norm: float = 1.0
    w_bits: int | None = None
    sparsity: float | None = None
    qat: bool = True
    qat_start: float | None = None
    acos_lambda: float = ACOS_LAMBDA
    acos_ramp: float = 0.25
    prune_start: float | None = None
    prune_end: float | None = None
    prune_every: int | None = None
    spec_augment: bool = True
    ctc_weight: float = 0.0
    dropout: float = 0.0
    max_symbols: int = MAX_SYMBOLS
    seed: int = 0
    init_from: str | None = None

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise TrainError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.w_bits not in (None, 4, 8):
            raise TrainError(f"w_bits must be None, 4 or 8, not {self.w_bits!r}")
        if self.sparsity is not None and not 0.0 < self.sparsity < 1.0:
            raise TrainError(f"sparsity must be between 0 and 1 (exclusive), not {self.sparsity}")
        for name in ("epochs", "batch_size", "batch_frames"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (name != "epochs"):
                raise TrainError(f"{name} must be a positive integer, not {v!r}")
        if self.epochs == 0 and (self.init_from is None or (self.w_bits and self.qat)):
            raise TrainError("epochs=0 (no training) needs init_from, and w_bits only with "
                             "qat=False (post-training quantization of that checkpoint)")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1 or self.warmup_steps < 0:
            raise TrainError(f"need lr > 0, 0 <= min_lr_ratio <= 1, warmup_steps >= 0 (got "
                             f"{self.lr}, {self.min_lr_ratio}, {self.warmup_steps})")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise TrainError(f"ctc_weight must be in [0, 1], not {self.ctc_weight}")
        if not 0.0 <= self.dropout < 1.0:
            raise TrainError(f"dropout must be in [0, 1), not {self.dropout}")
        for name in ("qat_start", "acos_ramp", "prune_start", "prune_end"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise TrainError(f"{name} must be a fraction in [0, 1], not {v}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# -- data ---------------------------------------------------------------------------------------

@dataclass
class UtteranceSet:
    """Utterances in memory: int8 feature codes and label ids.

    Attributes
    ----------
    ids, texts : list of str
    codes : list of torch.Tensor
        ``int8``, shape ``(T_i, F)``: :func:`model.frontend.features_int8` of each utterance.
    targets : list of list of int
        :func:`model.text.encode` of each text.
    """

    ids: list
    texts: list
    codes: list
    targets: list

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> list[int]:
        return [int(c.shape[0]) for c in self.codes]

    @classmethod
    def from_codes(cls, codes, texts, ids=None) -> "UtteranceSet":
        """Build a set from int8 codes and texts (ids default to their indices)."""
        ids = list(ids) if ids is not None else [str(i) for i in range(len(codes))]
        return cls(ids, list(texts), list(codes), [encode(t) for t in texts])


def _frontend_constants() -> dict:
    names = ("WIN_LENGTH", "HOP_LENGTH", "N_FFT", "N_MELS", "F_MIN", "F_MAX", "LOG_FLOOR",
             "STACK", "FEATURE_DIM", "FEATURE_SCALE", "FEATURE_ZERO_POINT")
    from .audio import SAMPLE_RATE
    d = {n: getattr(frontend, n) for n in names}
    d["SAMPLE_RATE"] = SAMPLE_RATE
    d["cache_version"] = _FEATURE_CACHE_VERSION
    return d


def load_split(manifest_dir, split: str, *, cache_dir=None, progress: bool = True,
               limit: int | None = None) -> UtteranceSet | None:
    """Features and targets of one split of a corpus, computed once and cached.

    Parameters
    ----------
    manifest_dir : str or Path
        Directory holding ``{split}.jsonl``.
    split : str
        ``"train"``, ``"dev"`` or ``"test"``.
    cache_dir : str or Path, optional
        Default ``build/features``.
    progress : bool
        tqdm bar while computing features.
    limit : int, optional
        Keep only the first ``limit`` utterances (after caching the whole split).

    Returns
    -------
    UtteranceSet or None
        None when the manifest has no such split. Utterances too short to give a single
        encoder frame are dropped.
    """
    from .audio import load_audio
    from .corpus import read_manifest

    path = Path(manifest_dir) / f"{split}.jsonl"
    if not path.exists():
        return None
    digest = hashlib.sha256(path.read_bytes())
    digest.update(json.dumps(_frontend_constants(), sort_keys=True).encode())
    cache = Path(cache_dir or BUILD_DIR / "features") / f"{split}-{digest.hexdigest()[:20]}.pt"
    rows = read_manifest(path)
    if cache.exists():
        blob = torch.load(cache, weights_only=True)
    else:
        from tqdm import tqdm
        ids, lengths, chunks = [], [], []
        for row in tqdm(rows, desc=f"features {split}", unit="utt", disable=not progress):
            q = frontend.features_int8(load_audio(row["audio"]))
            ids.append(row["id"])
            lengths.append(q.shape[0])
            chunks.append(q)
        blob = dict(ids=ids, lengths=torch.tensor(lengths, dtype=torch.int64),
                    codes=torch.cat(chunks) if chunks else
                    torch.zeros(0, frontend.FEATURE_DIM, dtype=torch.int8))
        import io
        buf = io.BytesIO()
        torch.save(blob, buf)
        atomic_write(cache, buf.getvalue())
    text = {r["id"]: r["text"] for r in rows}
    codes = torch.split(blob["codes"], blob["lengths"].tolist())
    keep = [i for i, n in enumerate(blob["lengths"].tolist()) if n > 0]
    if limit is not None:
        keep = keep[:limit]
    ids = [blob["ids"][i] for i in keep]
    targets = []
    for i in ids:
        try:
            targets.append(encode(text[i]))
        except ValueError as e:
            raise TrainError(f"{path}: utterance {i}: {e}") from None
    return UtteranceSet(ids, [text[i] for i in ids], [codes[i] for i in keep], targets)


def make_batches(lengths: list[int], *, batch_size: int, batch_frames: int,
                 generator: torch.Generator) -> list[list[int]]:
    """Length-sorted buckets, in shuffled order.

    Utterances are sorted by length (random order among equal lengths) and cut into buckets of
    at most ``batch_size`` utterances and ``batch_frames`` padded frames (``N * max T``; a
    single longer utterance gets a bucket of its own); the buckets are then shuffled.
    """
    n = len(lengths)
    perm = torch.randperm(n, generator=generator).tolist()
    order = sorted(perm, key=lambda i: lengths[i])
    batches, cur, cur_max = [], [], 0
    for i in order:
        m = max(cur_max, lengths[i])
        if cur and (len(cur) + 1 > batch_size or m * (len(cur) + 1) > batch_frames):
            batches.append(cur)
            cur, m = [], lengths[i]
        cur.append(i)
        cur_max = m
    if cur:
        batches.append(cur)
    return [batches[j] for j in torch.randperm(len(batches), generator=generator).tolist()]


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, *,
                 freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2,
                 time_width: int = 5, time_ratio: float = 0.1) -> torch.Tensor:
    """SpecAugment-style masking in place (see the module docstring); returns ``feats``.

    Parameters
    ----------
    feats : torch.Tensor, shape ``(N, T, F)``, ``F = STACK * N_MELS``
    lengths : torch.Tensor, shape ``(N,)``
    generator : torch.Generator
    """
    N, T, F = feats.shape
    mels = F // frontend.STACK

    def rint(hi):  # uniform integer in [0, hi]
        return int(torch.randint(0, hi + 1, (1,), generator=generator))

    for n in range(N):
        L = int(lengths[n])
        if L == 0:
            continue
        fill = feats[n, :L].mean(0)
        for _ in range(freq_masks):
            w = rint(min(freq_width, mels))
            f0 = rint(mels - w)
            cols = torch.cat([torch.arange(f0, f0 + w) + s * mels for s in range(frontend.STACK)])
            feats[n, :L, cols] = fill[cols]
        wmax = min(time_width, int(time_ratio * L))
        for _ in range(time_masks):
            w = rint(wmax)
            t0 = rint(L - w)
            feats[n, t0:t0 + w] = fill
    return feats


def collate(data: UtteranceSet, idx: list[int], *, generator: torch.Generator | None = None,
            augment: bool = False):
    """A padded batch.

    Returns
    -------
    feats : torch.Tensor, float32, shape ``(N, T, F)`` (features, zero-padded)
    lengths : torch.Tensor, int64, shape ``(N,)``
    targets : torch.Tensor, int64, shape ``(N, U)`` (zero-padded)
    target_lengths : torch.Tensor, int64, shape ``(N,)``
    """
    lengths = torch.tensor([data.codes[i].shape[0] for i in idx], dtype=torch.int64)
    tl = torch.tensor([len(data.targets[i]) for i in idx], dtype=torch.int64)
    N, T, U = len(idx), int(lengths.max()), max(1, int(tl.max()))
    feats = torch.zeros(N, T, data.codes[idx[0]].shape[1])
    targets = torch.zeros(N, U, dtype=torch.int64)
    for n, i in enumerate(idx):
        feats[n, :lengths[n]] = frontend.dequantize_features(data.codes[i])
        targets[n, :tl[n]] = torch.tensor(data.targets[i], dtype=torch.int64)
    if augment:
        spec_augment(feats, lengths, generator)
    return feats, lengths, targets, tl


def lr_at(step: int, *, lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine decay."""
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def evaluate_wer(model: RNNT, data: UtteranceSet, *, batch_size: int = 64,
                 max_symbols: int = MAX_SYMBOLS) -> dict:
    """Greedy WER / CER of ``model`` (in its current quantization mode) on ``data``.

    Returns
    -------
    dict
        ``wer``, ``cer`` (fractions, corpus level, :func:`model.evaluate.error_rates`),
        ``hyps`` (texts in ``data``'s order).
    """
    from .evaluate import error_rates

    was = model.training
    model.eval()
    order = sorted(range(len(data)), key=lambda i: data.lengths[i])
    hyps = [""] * len(data)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        feats, lengths, _, _ = collate(data, idx)
        for i, h in zip(idx, greedy_batch(model, feats, lengths, max_symbols=max_symbols)):
            hyps[i] = h
    model.train(was)
    r = error_rates(list(data.texts), hyps)
    return dict(wer=r["wer"], cer=r["cer"], hyps=hyps)


def plot_curves(history: dict, path) -> None:
    """Training loss (per step, and its running mean) and dev WER (per epoch) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    steps, loss = history.get("steps", []), history.get("loss", [])
    if loss:
        a.plot(steps, loss, lw=0.5, alpha=0.4, color="C0", label="batch")
        k = max(1, len(loss) // 50)
        run = [sum(loss[max(0, i - k + 1):i + 1]) / len(loss[max(0, i - k + 1):i + 1])
               for i in range(len(loss))]
        a.plot(steps, run, color="C0", label=f"mean of {k}")
        a.set_yscale("log")
    for name, (s, e) in history.get("phases", {}).items():
        if e > s:
            a.axvspan(s, e, alpha=0.1, color="C1" if name == "pruning" else "C2", label=name)
    a.set_xlabel("optimizer step")
    a.set_ylabel("RNN-T loss (nats / utterance)")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    ep = history.get("epochs", [])
    xs = [e["epoch"] for e in ep if e.get("dev_wer") is not None]
    if xs:
        b.plot(xs, [100 * e["dev_wer"] for e in ep if e.get("dev_wer") is not None], "o-",
               label="dev WER")
        b.plot(xs, [100 * e["dev_cer"] for e in ep if e.get("dev_wer") is not None], "s--",
               label="dev CER")
        b.legend(fontsize=8)
    b.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    b.set_xlabel("epoch")
    b.set_ylabel("%")
    b.grid(alpha=0.3)
    fig.suptitle(history.get("title", ""), fontsize=9)
    fig.tight_layout()
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


# -- the loop ------------------------------------------------------------------------------------

@dataclass
class _Schedule:
    total: int
    qat_start: int | None
    acos_ramp: int
    prune_start: int
    prune_end: int
    prune_every: int

    @classmethod
    def of(cls, cfg: TrainConfig, total: int) -> "_Schedule":
        fine = cfg.init_from is not None
        qs = cfg.qat_start if cfg.qat_start is not None else (0.0 if fine else 0.25)
        ps = cfg.prune_start if cfg.prune_start is not None else (0.0 if fine else 0.2)
        pe = cfg.prune_end if cfg.prune_end is not None else (0.6 if fine else 0.7)
        if pe < ps:
            raise TrainError(f"prune_end ({pe}) is before prune_start ({ps})")
        start, end = round(ps * total), round(pe * total)
        every = cfg.prune_every or max(1, (end - start) // 100)
        return cls(total=total,
                   qat_start=round(qs * total) if (cfg.w_bits and cfg.qat) else None,
                   acos_ramp=round(cfg.acos_ramp * total), prune_start=start, prune_end=end,
                   prune_every=every)

    def final_from(self, cfg: TrainConfig) -> int:
        """First step at which every schedule holds its final value."""
        f = 0
        if self.qat_start is not None:
            f = max(f, self.qat_start + (self.acos_ramp if cfg.acos_lambda > 0 else 0))
        if cfg.sparsity:
            f = max(f, self.prune_end)
        return f


def fit(model: RNNT, train_set: UtteranceSet, dev_set: UtteranceSet | None, cfg: TrainConfig, *,
        out=None, state: dict | None = None, progress: bool = True, max_steps: int | None = None,
        save_every_s: float = 600.0, log=print, init_masks: dict | None = None,
        stop_after_epoch: int | None = None, lineage: dict | None = None,
        interrupt=None) -> dict:
    """The training loop on in-memory data (what :func:`train` runs after loading the corpus).

    Parameters
    ----------
    model : model.rnnt.RNNT
        Trained in place.
    train_set, dev_set : UtteranceSet
        ``dev_set`` may be None (then the last epoch is the best).
    cfg : TrainConfig
    out : str or Path, optional
        Checkpoint path (best); ``out.last`` holds the resumable state, ``out`` with suffix
        ``.png`` the curves. None: nothing is written.
    state : dict, optional
        A training state from ``out.last`` to resume from.
    progress : bool
        tqdm progress bars.
    max_steps : int, optional
        Stop (resumably, saving ``out.last``) after this many optimizer steps in this call.
    save_every_s : float
        Also save ``out.last`` inside an epoch when this many seconds passed since the last save.
    log : callable
        Receives one-line progress messages (None: silent).
    init_masks : dict, optional
        Pruning masks of the checkpoint ``model`` was initialized from: with ``cfg.sparsity``,
        pruning continues from them (see :class:`model.prune.GradualPruner`'s ``masks``), so a
        pruned model can be trained further without regrowing its pruned weights.
    stop_after_epoch : int, optional
        Stop (resumably) once this many epochs are done, with the learning-rate and pruning
        schedules still planned over ``cfg.epochs``: a long schedule cut short, reproducibly.
    lineage : dict, optional
        Where the weights came from (``init_sha256``: the SHA-256 in the header of the
        checkpoint they were initialized from), kept in the training state and copied into the
        saved checkpoints' metrics. A resumed run keeps the lineage of its state.
    interrupt : callable, optional
        Asked before every optimizer step; when it returns True the run stops there as on
        Ctrl-C: ``out.last`` is saved and ``KeyboardInterrupt`` raised. Unlike a
        ``KeyboardInterrupt`` raised by a signal, it never lands inside a step, so resuming
        gives exactly the uninterrupted run (``zeroskip train`` routes SIGTERM and a first
        Ctrl-C here).

    Returns
    -------
    dict
        Summary: ``best_dev_wer``, ``best_epoch``, ``final_dev_wer``, ``steps``, ``epochs``,
        ``seconds``, ``stopped`` (True if ``max_steps`` or ``stop_after_epoch`` ended it early),
        ``history``.
    """
    from tqdm import tqdm

    log = log or (lambda *a, **k: None)
    out = Path(out) if out is not None else None
    last = Path(str(out) + ".last") if out is not None else None
    gen_probe = torch.Generator().manual_seed(cfg.seed)
    per_epoch = len(make_batches(train_set.lengths, batch_size=cfg.batch_size,
                                 batch_frames=cfg.batch_frames, generator=gen_probe))
    total = cfg.epochs * per_epoch
    sched = _Schedule.of(cfg, total)
    final_from = sched.final_from(cfg)

    params = list(model.parameters())
    model.dropout = cfg.dropout    # training mode only (model.rnnt.RNNT.dropout)
    ctc_head = None
    if cfg.ctc_weight > 0:      # training-only auxiliary head; not part of the model
        torch.manual_seed(cfg.seed + 17)
        ctc_head = torch.nn.Linear(model.hparams["joint_dim"], model.vocab_size)
        params += list(ctc_head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.98))
    pruner = None
    if cfg.sparsity:
        try:
            pruner = GradualPruner(model, sparsity=cfg.sparsity, start=sched.prune_start,
                                   end=sched.prune_end, every=sched.prune_every,
                                   masks=init_masks if state is None else None)
        except ValueError as e:
            raise TrainError(f"--sparsity: {e}") from None
        if state is None and init_masks:
            pruner.apply()
            log("pruning continues from the initial checkpoint's masks (sparsity "
                + ", ".join(f"{k} {100 * v:.1f} %" for k, v in pruner.current.items()) + ")")
    step, epoch, batch0, elapsed = 0, 0, 0, 0.0
    history = dict(steps=[], loss=[], epochs=[], phases={})
    best = dict(wer=None, epoch=None)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        if ctc_head is not None:
            ctc_head.load_state_dict(state["ctc_head"])
        if pruner is not None and state.get("pruner"):
            pruner.load_state_dict(state["pruner"])
        torch.set_rng_state(state["rng"]["torch"])
        step, epoch, batch0 = state["step"], state["epoch"], state["batch"]
        history, best, elapsed = state["history"], state["best"], state["elapsed"]
        lineage = state.get("lineage")
    lineage = dict(lineage or {})
    if sched.qat_start is not None:
        history["phases"]["QAT"] = (sched.qat_start, total)
    if pruner is not None:
        history["phases"]["pruning"] = (sched.prune_start, sched.prune_end)
    mode = ("fp32" if not cfg.w_bits else
            f"{cfg.w_bits}-bit {'QAT' if cfg.qat else 'fp32 training, then PTQ'}")
    history["title"] = (f"{cfg.preset} preset, {mode}, sparsity {cfg.sparsity or 0}, "
                        f"seed {cfg.seed}")

    def train_state(ep, b):
        return dict(config=cfg.to_dict(), step=step, epoch=ep, batch=b,
                    optimizer=opt.state_dict(), pruner=pruner.state_dict() if pruner else None,
                    ctc_head=ctc_head.state_dict() if ctc_head is not None else None,
                    rng=dict(torch=torch.get_rng_state()),
                    history=history, best=best, elapsed=elapsed + time.monotonic() - t_start,
                    lineage=lineage)

    def masks():
        return dict(pruner.masks) if pruner else None

    def save_last(ep, b):
        if last is not None:
            save(last, model, masks=masks(), train_state=train_state(ep, b),
                 metrics=dict(epoch=ep, step=step))

    t_start = time.monotonic()
    t_saved = t_start
    steps_here = 0
    stopped = False
    b = batch0
    try:
        while epoch < cfg.epochs:
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                stopped = True
                break
            g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
            batches = make_batches(train_set.lengths, batch_size=cfg.batch_size,
                                   batch_frames=cfg.batch_frames, generator=g)
            bar = tqdm(total=len(batches), initial=batch0, disable=not progress, leave=False,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
            b = batch0
            while b < len(batches):
                if max_steps is not None and steps_here >= max_steps:
                    stopped = True
                    break
                if interrupt is not None and interrupt():
                    raise KeyboardInterrupt     # between steps: the saved state is exact
                if sched.qat_start is not None and step >= sched.qat_start:
                    if not bool(model.act_quant):
                        model.set_quantization(w_bits=cfg.w_bits, activations=True)
                        log(f"step {step}: quantization-aware training on ({cfg.w_bits}-bit "
                            f"weights, int8 activations)")
                lr = lr_at(step, lr=cfg.lr, warmup=cfg.warmup_steps, total=total,
                           min_ratio=cfg.min_lr_ratio)
                for group in opt.param_groups:
                    group["lr"] = lr
                model.train()
                # augmentation randomness is a function of (seed, epoch, batch): a resumed
                # run draws exactly what an uninterrupted one would
                aug = torch.Generator().manual_seed((cfg.seed * 1_000_003 + epoch) * 1_000_003 + b)
                feats, lengths, targets, tl = collate(train_set, batches[b], generator=aug,
                                                      augment=cfg.spec_augment)
                if ctc_head is None:
                    loss = model.loss(feats, lengths, targets, tl)
                    aux = 0.0
                else:
                    loss, ctc = model.loss(feats, lengths, targets, tl, ctc_head=ctc_head)
                    aux = cfg.ctc_weight * ctc
                lam = 0.0
                if sched.qat_start is not None:
                    lam = acos_lambda(step, start=sched.qat_start, ramp=sched.acos_ramp,
                                      lam=cfg.acos_lambda)
                objective = loss + aux
                if lam > 0:
                    objective = objective + lam * acos_regularizer(model)
                if not bool(torch.isfinite(objective)):
                    raise TrainError(f"the loss became {float(objective)} at step {step}; lower "
                                     f"the learning rate (--lr) or the gradient clip")
                opt.zero_grad(set_to_none=True)
                objective.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
                opt.step()
                step += 1
                steps_here += 1
                b += 1
                if pruner is not None:
                    pruner.step(step)
                history["steps"].append(step)
                history["loss"].append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{lr:.2e}")
                if time.monotonic() - t_saved > save_every_s:
                    save_last(epoch, b)
                    t_saved = time.monotonic()
            bar.close()
            if stopped:
                save_last(epoch, b)
                break
            # -- end of epoch
            batch0 = 0
            epoch += 1
            n = len(batches)
            mean_loss = sum(history["loss"][-n:]) / max(1, min(n, len(history["loss"])))
            entry = dict(epoch=epoch, step=step, train_loss=mean_loss, lr=lr,
                         seconds=elapsed + time.monotonic() - t_start,
                         quantized=bool(model.act_quant),
                         sparsity=sparsity_report(model)["sparsity"], dev_wer=None, dev_cer=None)
            if dev_set is not None and len(dev_set):
                r = evaluate_wer(model, dev_set, max_symbols=cfg.max_symbols)
                entry.update(dev_wer=r["wer"], dev_cer=r["cer"])
            history["epochs"].append(entry)
            wer_text = "" if entry["dev_wer"] is None else \
                f", dev WER {100 * entry['dev_wer']:.2f}% CER {100 * entry['dev_cer']:.2f}%"
            log(f"epoch {epoch}/{cfg.epochs}: step {step}, loss {mean_loss:.3f}, sparsity "
                f"{entry['sparsity']:.3f}{wer_text}")
            if step >= final_from and (best["epoch"] is None or best["wer"] is None
                                       or entry["dev_wer"] is None
                                       or entry["dev_wer"] <= best["wer"]):
                best = dict(wer=entry["dev_wer"], epoch=epoch)
                if out is not None:
                    save(out, model, masks=masks(),
                         metrics=dict(_metrics(cfg, model, entry), **lineage))
            if out is not None:
                save_last(epoch, 0)
                t_saved = time.monotonic()
                plot_curves(history, out.with_suffix(".png"))
    except KeyboardInterrupt:
        save_last(epoch, b)
        log(f"interrupted: state saved to {last}; rerun the same command to resume")
        raise
    return dict(best_dev_wer=best["wer"], best_epoch=best["epoch"],
                final_dev_wer=history["epochs"][-1]["dev_wer"] if history["epochs"] else None,
                steps=step, epochs=epoch, seconds=elapsed + time.monotonic() - t_start,
                stopped=stopped, history=history)


def _metrics(cfg: TrainConfig, model: RNNT, entry: dict) -> dict:
    rep = sparsity_report(model)
    return dict(epoch=entry["epoch"], step=entry["step"], dev_wer=entry["dev_wer"],
                dev_cer=entry["dev_cer"], train_loss=entry["train_loss"],
                sparsity=rep["sparsity"], w_bits=cfg.w_bits,
                qat=cfg.qat if cfg.w_bits else None, preset=cfg.preset,
                parameters=count_parameters(model), seed=cfg.seed)


def _note_changed_init(last: Path, state: dict, init_from, log) -> None:
    """Say so when a resumed run was started from other weights than ``init_from`` holds now.

    The saved run goes on from its own state (``init_from`` only seeds a new run), so a rerun
    after ``--init``'s file was replaced (e.g. by a better fp32 base) would otherwise quietly
    continue the old lineage. Not an error: ``make fp32-more`` resumes a run whose result has
    replaced its own ``--init`` file.
    """
    recorded = (state.get("lineage") or {}).get("init_sha256")
    if init_from is None or recorded is None:
        return
    try:
        now = read_header(init_from)["sha256"]
    except (CheckpointError, OSError):
        return
    if now != recorded:
        log(f"note: {last} was started from other weights than {init_from} holds now "
            f"(SHA-256 {recorded[:12]} vs {now[:12]}); it continues from its own state. "
            f"Delete it (or pass --no-resume) to fine-tune from {init_from} instead")


def train(*, manifest_dir, out, preset: str = "default", epochs: int = 20, batch_size: int = 32,
          batch_frames: int = 4000, lr: float = 1.5e-3, w_bits: int | None = None,
          sparsity: float | None = None, qat: bool = True, init_from=None, resume: bool = True,
          progress: bool = True, seed: int = 0, spec_augment: bool = True,
          cache_dir=None, threads: int | None = None, max_steps: int | None = None,
          stop_after_epoch: int | None = None, dev_limit: int | None = None, log=print,
          interrupt=None, **options) -> dict:
    """Train a model on a corpus directory and write its checkpoint (module docstring).

    Parameters
    ----------
    manifest_dir : str or Path
        Corpus directory with ``train.jsonl`` (and ``dev.jsonl`` for model selection).
    out : str or Path
        Checkpoint to write (best); also ``out.last`` and the ``.png`` curves beside it.
    preset : {"default", "tiny"}
    epochs, batch_size, batch_frames, lr, seed, spec_augment
        See :class:`TrainConfig`.
    w_bits : {None, 4, 8}
        Weight width of the result (None: fp32).
    sparsity : float, optional
        Final sparsity of every matrix (gradual pruning).
    qat : bool
        With ``w_bits``: quantization-aware training (True) or post-training quantization.
    init_from : str or Path, optional
        Start from this checkpoint's weights (same model sizes) and fine-tune.
    resume : bool
        Continue from ``out.last`` when it exists (its settings must match, except ``epochs``).
    progress : bool
        Progress bars.
    cache_dir : str or Path, optional
        Feature cache (default ``build/features``).
    threads : int, optional
        ``torch.set_num_threads`` for the run.
    max_steps : int, optional
        Stop (resumably) after this many optimizer steps.
    stop_after_epoch : int, optional
        Stop (resumably) once this many epochs are done; the schedules stay planned over
        ``epochs`` (see :func:`fit`). Not part of the configuration: a later run may go on.
    dev_limit : int, optional
        Evaluate only the first ``dev_limit`` dev utterances each epoch.
    log : callable
        One-line messages (None: silent).
    interrupt : callable, optional
        See :func:`fit`.
    **options
        Other :class:`TrainConfig` fields (``warmup_steps``, ``acos_lambda``, ``prune_end``,
        ``model`` overrides, ...).

    Returns
    -------
    dict
        :func:`fit`'s summary plus ``out``, ``parameters``, ``sparsity``, ``footprint`` and, for
        post-training quantization, ``ptq_dev_wer``.
    """
    log = log or (lambda *a, **k: None)
    if threads:
        torch.set_num_threads(int(threads))
    cfg = TrainConfig(preset=preset, epochs=epochs, batch_size=batch_size,
                      batch_frames=batch_frames, lr=lr, w_bits=w_bits, sparsity=sparsity,
                      qat=qat, seed=seed, spec_augment=spec_augment,
                      init_from=str(init_from) if init_from is not None else None, **options)
    out = Path(out)
    last = Path(str(out) + ".last")
    train_set = load_split(manifest_dir, "train", cache_dir=cache_dir, progress=progress)
    if train_set is None or not len(train_set):
        raise TrainError(f"{Path(manifest_dir) / 'train.jsonl'}: no training utterances; make a "
                         f"corpus with `zeroskip corpus --hours H --out DIR`")
    dev_set = load_split(manifest_dir, "dev", cache_dir=cache_dir, progress=progress,
                         limit=dev_limit)
    if dev_set is None:
        log("no dev.jsonl: the last epoch will be kept")

    state, init_masks, lineage = None, None, {}
    if stop_after_epoch is not None and stop_after_epoch < 1:
        raise TrainError(f"stop_after_epoch must be at least 1, not {stop_after_epoch}")
    if resume and last.exists() and cfg.epochs > 0:
        ck = load(last, train_state=True)
        state = ck.train_state
        if state is None:
            raise TrainError(f"{last} holds no training state; delete it or pass resume=False")
        saved = dict(state["config"])
        now = cfg.to_dict()
        defaults = TrainConfig().to_dict()
        diff = [k for k in now if k != "epochs" and saved.get(k, defaults[k]) != now[k]]
        if diff:
            k = diff[0]
            raise TrainError(f"{last} was trained with {k}={saved.get(k)!r}, not {now[k]!r}; "
                             f"rerun with the same settings, or delete it (or --no-resume) to "
                             f"start over")
        model = ck.model
        log(f"resuming from {last}: epoch {state['epoch']}, step {state['step']}")
        _note_changed_init(last, state, init_from, log)
    else:
        torch.manual_seed(cfg.seed)
        model = rnnt(preset=cfg.preset, **cfg.model)
        if init_from is not None:
            try:
                init = load_into(model, init_from)
                init_masks, lineage = init.masks or None, dict(init_sha256=init.header["sha256"])
            except CheckpointError as e:
                raise TrainError(f"--init: {e}") from None
            log(f"initialized from {init_from}")
            model.set_quantization(w_bits=None)
        else:
            allc = torch.cat(train_set.codes)
            x = frontend.dequantize_features(allc).double()
            model.set_feature_normalization(x.mean(0).float(),
                                            x.std(0).clamp(min=1e-3).float())
    log(f"{len(train_set)} training utterances, {0 if dev_set is None else len(dev_set)} dev; "
        f"model {cfg.preset}: {count_parameters(model):,} parameters")
    summary = fit(model, train_set, dev_set, cfg, out=out, state=state, progress=progress,
                  max_steps=max_steps, log=log, init_masks=init_masks, interrupt=interrupt,
                  stop_after_epoch=stop_after_epoch, lineage=lineage)
    result = dict(summary, out=str(out), parameters=count_parameters(model))
    if summary["stopped"]:
        return result
    if cfg.epochs == 0 or not out.exists():      # no training, or no eligible epoch yet
        save(out, model, masks=init_masks, metrics=dict(epoch=summary["epochs"], **lineage))
    best = load(out)
    if cfg.w_bits and not cfg.qat:
        q = quantize_post_training(best.model, cfg.w_bits)
        metrics = dict(best.metrics, w_bits=cfg.w_bits, qat=False, float_dev_wer=best.metrics.get("dev_wer"))
        if dev_set is not None and len(dev_set):
            r = evaluate_wer(q, dev_set, max_symbols=cfg.max_symbols)
            metrics.update(dev_wer=r["wer"], dev_cer=r["cer"])
            result["ptq_dev_wer"] = r["wer"]
            log(f"post-training quantization to {cfg.w_bits} bits: dev WER "
                f"{100 * r['wer']:.2f}% (fp32 {100 * (best.metrics.get('dev_wer') or 0):.2f}%)")
        save(out, q, masks=best.masks, metrics=metrics)
        best = load(out)
    from .prune import footprint
    result["sparsity"] = sparsity_report(best.model)["sparsity"]
    result["footprint"] = {k: v for k, v in footprint(best.model, w_bits=cfg.w_bits or 8).items()
                           if k != "layers"}
    result["metrics"] = best.metrics
    return result


# -- measurement --------------------------------------------------------------------------------

def benchmark_step(*, preset: str = "default", batch: int = 32, frames: int = 100,
                   labels: int = 40, w_bits: int | None = None, repeats: int = 3,
                   threads: int | None = None) -> dict:
    """Seconds per training step (forward, backward, Adam) on random data.

    ``frames = 100`` encoder frames is 3 s of audio; ``labels = 40`` characters is a typical
    transcript of that length. Returns the median and all timings.
    """
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    m = rnnt(preset=preset)
    m.set_quantization(w_bits=w_bits)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x = torch.randn(batch, frames, m.hparams["feature_dim"])
    lengths = torch.full((batch,), frames)
    y = torch.randint(1, m.vocab_size, (batch, labels))
    yl = torch.full((batch,), labels)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = m.loss(x, lengths, y, yl)
        if w_bits:
            loss = loss + acos_regularizer(m)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    times = times[1:]
    return dict(median=sorted(times)[len(times) // 2], times=times, threads=torch.get_num_threads(),
                preset=preset, batch=batch, frames=frames, labels=labels, w_bits=w_bits)
