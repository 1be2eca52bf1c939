"""Model checkpoints: a versioned, checksummed file holding a model and how it was trained.

File layout (version 1)
-----------------------
::

    b"ZEROSKIP-CKPT\\n"                  magic, 14 bytes
    one line of UTF-8 JSON, "\\n"-ended    the header
    payload                               torch.save of a dict (loaded with weights_only=True)

The header is readable without torch (:func:`read_header`)::

    {"format": "zeroskip-rnnt", "version": 1, "payload_bytes": n, "sha256": hex of the payload,
     "hparams": {...}, "w_bits": {matrix: bits or null}, "activations": bool,
     "sparsity": {matrix: fraction}, "metrics": {...}, "has_train_state": bool}

The payload::

    {"hparams": RNNT constructor arguments,
     "state_dict": the model's parameters and buffers (weights with pruned entries 0, bit widths,
                   feature normalization, the logit observer),
     "masks": {matrix: bool tensor} (empty when not pruned),
     "quant": RNNT.quant_spec() (per-layer bit widths and activation steps),
     "metrics": {...},
     "train_state": None or {"optimizer", "step", "epoch", "batch", "rng", "history",
                             "config", "pruner", ...} for resuming}

Loading checks the magic, the header, the payload length (truncation) and its SHA-256
(corruption) before unpickling, and the model's shapes after; every failure raises
:class:`CheckpointError` with a one-line message naming the file. Writes go to a temporary file
in the same directory that is renamed over the target, so an interrupted save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .rnnt import RNNT

__all__ = ["FORMAT", "VERSION", "MAGIC", "CheckpointError", "Checkpoint", "save", "load",
           "load_into", "read_header", "atomic_write", "keep_better"]

FORMAT = "zeroskip-rnnt"
VERSION = 1
MAGIC = b"ZEROSKIP-CKPT\n"
_MAX_HEADER = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (the message is one line and names the file)."""


@dataclass
class Checkpoint:
    """What :func:`load` returns.

    Attributes
    ----------
    model : model.rnnt.RNNT
        In evaluation mode, quantization settings as saved.
    masks : dict[str, torch.Tensor]
        Pruning masks by matrix name (empty when not pruned).
    metrics : dict
    train_state : dict or None
        Only when loaded with ``train_state=True``.
    header : dict
    path : pathlib.Path
    """

    model: RNNT
    masks: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    train_state: dict | None = None
    header: dict = field(default_factory=dict)
    path: Path | None = None


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)            # as open() would, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _sparsity(model: RNNT) -> dict:
    return {k: float((m.weight.detach() == 0).double().mean()) for k, m in model.matrices().items()}


def save(path, model: RNNT, *, masks: dict | None = None, metrics: dict | None = None,
         train_state: dict | None = None) -> None:
    """Save a model (and optionally its training state) atomically.

    Parameters
    ----------
    path : str or Path
    model : model.rnnt.RNNT
    masks : dict[str, torch.Tensor], optional
        Pruning masks by matrix name.
    metrics : dict, optional
        JSON-compatible results (dev WER, epoch, ...), also copied into the header.
    train_state : dict, optional
        Everything needed to resume (see the module docstring).
    """
    if not isinstance(model, RNNT):
        raise TypeError(f"save: model must be an RNNT, not {type(model).__name__}")
    metrics = dict(metrics or {})
    masks = {k: v.detach().to(torch.bool).clone() for k, v in (masks or {}).items()}
    unknown = set(masks) - set(model.matrices())
    if unknown:
        raise ValueError(f"save: masks for unknown matrices {sorted(unknown)}")
    payload = dict(hparams=dict(model.hparams), state_dict=model.state_dict(), masks=masks,
                   quant=model.quant_spec(), metrics=metrics, train_state=train_state)
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    header = dict(format=FORMAT, version=VERSION, payload_bytes=len(body),
                  sha256=hashlib.sha256(body).hexdigest(), hparams=dict(model.hparams),
                  w_bits=model.w_bits, activations=bool(model.act_quant),
                  sparsity=_sparsity(model), metrics=metrics,
                  has_train_state=train_state is not None)
    line = json.dumps(header, sort_keys=True).encode() + b"\n"
    atomic_write(path, MAGIC + line + body)


def _split(path) -> tuple[dict, bytes, Path]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    if not raw.startswith(MAGIC):
        if MAGIC.startswith(raw):
            raise CheckpointError(f"{path}: truncated checkpoint ({len(raw)} bytes, not even "
                                  f"a header)")
        raise CheckpointError(f"{path}: not a zeroskip checkpoint (it does not start with "
                              f"{MAGIC[:-1].decode()!r})")
    end = raw.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint header")
    try:
        header = json.loads(raw[len(MAGIC):end].decode())
        if not isinstance(header, dict):
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{path}: corrupt checkpoint header (not JSON)") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {header.get('format')!r}, expected "
                              f"{FORMAT!r}")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {header.get('version')!r}; "
                              f"this zeroskip reads version {VERSION} (retrain or convert it)")
    body = raw[end + 1:]
    n = header.get("payload_bytes")
    if not isinstance(n, int) or len(body) < n:
        raise CheckpointError(f"{path}: truncated checkpoint ({len(body)} of {n} payload bytes)")
    if len(body) > n:
        raise CheckpointError(f"{path}: corrupt checkpoint ({len(body) - n} bytes of trailing "
                              f"data)")
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise CheckpointError(f"{path}: corrupt checkpoint (SHA-256 of the payload does not "
                              f"match its header)")
    return header, body, path


def read_header(path) -> dict:
    """The validated JSON header of a checkpoint (checks the payload's length and checksum)."""
    return _split(path)[0]


def _payload(path) -> tuple[dict, dict, Path]:
    header, body, path = _split(path)
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # the checksum matched: the writer was not this module
        raise CheckpointError(f"{path}: unreadable checkpoint payload "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                              ) from None
    for key in ("hparams", "state_dict", "masks"):
        if not isinstance(payload, dict) or key not in payload:
            raise CheckpointError(f"{path}: checkpoint payload has no {key!r}")
    return header, payload, path


def _load_state(model: nn.Module, state: dict, path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        what = (f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}")
        raise CheckpointError(f"{path}: checkpoint does not fit this model ({what}; "
                              f"{len(missing)} missing, {len(extra)} unexpected entries; "
                              f"different preset or sizes?)")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{path}: shape mismatch for {k}: {tuple(v.shape)} in the "
                                  f"checkpoint, {tuple(own[k].shape)} in the model (different "
                                  f"preset or sizes?)")
    model.load_state_dict(state)


def _masks(payload: dict, model: RNNT, path: Path) -> dict:
    mats = model.matrices()
    out = {}
    for k, v in payload["masks"].items():
        if k not in mats or tuple(v.shape) != tuple(mats[k].weight.shape):
            raise CheckpointError(f"{path}: mask {k!r} does not fit the model")
        out[k] = v.to(torch.bool)
    return out


def load(path, *, train_state: bool = False) -> Checkpoint:
    """Load a checkpoint into a new model.

    Parameters
    ----------
    path : str or Path
    train_state : bool
        Also return the training state (optimizer, step, RNG, history).

    Raises
    ------
    CheckpointError
        Not a checkpoint, truncated, corrupt, another format version, or parameters that do not
        fit the saved hyper-parameters.
    """
    header, payload, path = _payload(path)
    try:
        model = RNNT(**payload["hparams"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad hyper-parameters in the checkpoint ({e})") from None
    _load_state(model, payload["state_dict"], path)
    return Checkpoint(model=model.eval(), masks=_masks(payload, model, path),
                      metrics=dict(payload.get("metrics") or {}),
                      train_state=payload.get("train_state") if train_state else None,
                      header=header, path=path)


def load_into(model: RNNT, path) -> Checkpoint:
    """Load a checkpoint's parameters and buffers into an existing model (e.g. to fine-tune).

    The model keeps its own hyper-parameters; they must match the checkpoint's shapes
    (otherwise :class:`CheckpointError` names the first mismatching tensor).
    """
    header, payload, path = _payload(path)
    _load_state(model, payload["state_dict"], path)
    return Checkpoint(model=model, masks=_masks(payload, model, path),
                      metrics=dict(payload.get("metrics") or {}), header=header, path=path)


def keep_better(new, old) -> bool:
    """Copy checkpoint ``new`` over ``old`` if ``old`` does not exist or ``new`` has the lower
    ``dev_wer`` in its metrics; returns whether it did. Both are validated first
    (:func:`read_header`: a corrupt file raises :class:`CheckpointError` and nothing is copied)."""
    new, old = Path(new), Path(old)
    wer_new = read_header(new).get("metrics", {}).get("dev_wer")
    if wer_new is None:
        raise CheckpointError(f"{new}: no dev_wer in its metrics; nothing to compare")
    if old.exists():
        wer_old = read_header(old).get("metrics", {}).get("dev_wer")
        if wer_old is not None and wer_old <= wer_new:
            return False
    atomic_write(old, new.read_bytes())
    return True


if __name__ == "__main__":      # python -m model.checkpoint keep-better NEW OLD
    import sys
    if len(sys.argv) != 4 or sys.argv[1] != "keep-better":
        print("usage: python -m model.checkpoint keep-better NEW OLD", file=sys.stderr)
        sys.exit(2)
    try:
        kept = keep_better(sys.argv[2], sys.argv[3])
    except CheckpointError as e:
        print(f"keep-better: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{sys.argv[3]}: {'replaced by' if kept else 'kept; not worse than'} {sys.argv[2]}")
