"""The README's generated blocks: text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``,
rewritten by a benchmark's ``--readme`` (and nothing else of the file)."""

from __future__ import annotations

from pathlib import Path

from model.checkpoint import atomic_write

__all__ = ["markers", "check_block", "update_block", "BlockError"]


class BlockError(Exception):
    """The file cannot take the block (the message is one line)."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def _span(text: str, path: Path, name: str, error=BlockError) -> tuple[int, int]:
    begin, end = markers(name)
    b, e = text.find(begin), text.find(end)
    if b < 0 or e < 0 or e < b or text.count(begin) != 1 or text.count(end) != 1:
        raise error(f"{path} has no block between {begin} and {end} (each once, in that "
                    f"order); add the two markers where the table goes; {Path(path).name} is "
                    f"unchanged")
    return b + len(begin), e


def check_block(path: Path, name: str, error=BlockError) -> None:
    """Raise ``error`` unless ``path`` can be read and holds the markers of ``name``."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror or e}") from None
    _span(text, path, name, error)


def update_block(path: Path, name: str, block: str, error=BlockError) -> None:
    """Replace what lies between the markers of ``name`` in ``path`` with ``block``
    (atomically)."""
    path = Path(path)
    check_block(path, name, error)
    text = path.read_text()
    b, e = _span(text, path, name, error)
    atomic_write(path, (text[:b] + "\n" + block.strip("\n") + "\n" + text[e:]).encode())
