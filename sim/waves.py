"""Waveform helpers: the signal list of a dump, and a GTKWave save file that groups it.

Every backend writes its dump (VCD, or FST where the simulator supports it) and then calls
:func:`write_gtkw`, which reads the dump's *header* (the scope/variable declarations; for FST via
GTKWave's ``fst2vcd``, stopped after the header) and writes a ``.gtkw`` file with one group per
part of the accelerator:

``ports``          top-level ports except the counters
``counters``       the ``cnt_*`` ports
``controller``     the ``ctrl`` instance
``decompressor``   the ``decomp`` instance
``vector unit``    the ``vector`` instance (VADD .. MOVE, the LUT memory)
``lane N``         each ``laneN`` instance (closed, except lane 0)
``<name>``         any other instance, e.g. the memories (closed)
``top internals``  the toplevel's other signals (closed)

Simulator-generated temporaries (names starting with ``$``) and memory rows are left out. The
save file is GTKWave's plain-text format: ``@<flags>`` lines set the display flags of the traces
that follow (hex for vectors, binary for bits, group begin/end markers), other lines name
traces by their full hierarchical path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Var", "read_header", "write_gtkw", "wave_format"]

# GTKWave trace flags (gtkwave's analyzer.h): TR_HEX, TR_BIN, TR_RJUSTIFY, TR_BLANK,
# TR_CLOSED, TR_GRP_BEGIN, TR_GRP_END.
_HEX, _BIN, _RJUSTIFY, _BLANK = 0x2, 0x8, 0x20, 0x200
_CLOSED, _GRP_BEGIN, _GRP_END = 0x400000, 0x800000, 0x1000000


@dataclass(frozen=True)
class Var:
    """One variable of a dump: ``scope`` path, ``name`` (with its bit range if declared with
    one, as GTKWave names it) and ``width``."""

    scope: tuple[str, ...]
    name: str
    width: int
    ref: str = ""

    @property
    def full_name(self) -> str:
        return ".".join((*self.scope, self.name))


def wave_format(path) -> str:
    """``"vcd"`` or ``"fst"`` from the file name; ``ValueError`` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".vcd", ".fst"):
        raise ValueError(f"waves file {str(path)!r} must end in .vcd or .fst")
    return suffix[1:]


def _header_tokens(lines):
    for line in lines:
        yield from line.split()


def _parse_header(lines) -> list[Var]:
    out, scope = [], []
    toks = _header_tokens(lines)
    for tok in toks:
        if tok == "$scope":
            _kind, name = next(toks), next(toks)
            scope.append(name)
        elif tok == "$upscope":
            scope.pop()
        elif tok == "$var":
            body = []
            for t in toks:
                if t == "$end":
                    break
                body.append(t)
            _type, width, _ident, ref, *rest = body
            width = int(width)
            rng = "".join(rest)
            if rng:
                name = ref + rng
            elif width > 1 and not ref.endswith("]"):
                name = f"{ref}[{width - 1}:0]"
            else:
                name = ref
            out.append(Var(tuple(scope), name, width, ref))
        elif tok == "$enddefinitions":
            break
    return out


def read_header(path) -> list[Var]:
    """The variables declared in a VCD or FST file (for FST this needs ``fst2vcd`` on PATH)."""
    path = Path(path)
    if wave_format(path) == "vcd":
        with open(path, errors="replace") as f:
            return _parse_header(f)
    exe = shutil.which("fst2vcd")
    if exe is None:
        raise FileNotFoundError("reading an FST header needs GTKWave's fst2vcd on PATH")
    proc = subprocess.Popen([exe, "-f", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, errors="replace")
    try:
        return _parse_header(proc.stdout)
    finally:
        proc.kill()  # only the header was needed
        proc.wait()


_LANE = re.compile(r"lane(\d+)$")


def _design_root(vars_: list[Var]) -> tuple[str, ...]:
    """The scope of the accelerator's top: the shallowest scope with a ``ctrl``, ``decomp``
    or ``laneN`` child, else the shallowest scope holding a ``start`` port."""
    scopes = {v.scope for v in vars_}
    parents = [s[:-1] for s in scopes
               if s and (s[-1] in ("ctrl", "decomp") or _LANE.match(s[-1]))]
    if parents:
        return min(parents, key=len)
    starts = [v.scope for v in vars_ if v.name == "start"]
    return min(starts, key=len) if starts else ()


def _visible(v: Var) -> bool:
    """Not a simulator temporary (``$...``) and not a memory row (``mem[12]``)."""
    ref = (v.ref or v.name).lstrip("\\")
    return not (ref.startswith("$") or re.search(r"\[\d+\]$", ref))


def _base(v: Var) -> str:
    return (v.ref or v.name).lstrip("\\").split("[")[0]


def groups(vars_: list[Var], ports=None) -> list[tuple[str, list[Var], bool]]:
    """``(group name, variables, closed)`` in display order.

    ``ports``: the toplevel's port names; other signals of the top scope then go to a closed
    ``top internals`` group (without it, every top-scope signal counts as a port).
    """
    root = _design_root(vars_)
    n = len(root)
    port_set = set(ports) if ports is not None else None
    top_ports, counters, internal, subs = [], [], [], {}
    for v in vars_:
        if v.scope[:n] != root or not _visible(v):
            continue
        if len(v.scope) == n:
            base = _base(v)
            if port_set is not None and base not in port_set:
                internal.append(v)
            elif base.startswith("cnt_"):
                counters.append(v)
            else:
                top_ports.append(v)
        else:
            subs.setdefault(v.scope[n], []).append(v)

    def order(name):
        m = _LANE.match(name)
        if name == "ctrl":
            return (0, 0, name)
        if name == "decomp":
            return (1, 0, name)
        if name == "vector":
            return (1, 1, name)
        if m:
            return (2, int(m.group(1)), name)
        return (3, 0, name)

    out = [("ports", top_ports, False), ("counters", counters, False)]
    for name in sorted(subs, key=order):
        m = _LANE.match(name)
        label = {"ctrl": "controller (ctrl)", "decomp": "decompressor (decomp)",
                 "vector": "vector unit (vector)"}.get(name, f"lane {m.group(1)}" if m else name)
        closed = (m.group(1) != "0") if m else name not in ("ctrl", "decomp", "vector")
        out.append((label, subs[name], closed))
    out.append(("top internals", internal, True))
    return [g for g in out if g[1]]


def write_gtkw(dump_path, gtkw_path=None, *, title: str = "zeroskip", ports=None) -> Path:
    """Write a GTKWave save file for ``dump_path`` (default: same name, ``.gtkw``); ``ports``
    as in :func:`groups`.

    If the dump's header cannot be read (FST without ``fst2vcd``), the save file only names the
    dump file.
    """
    dump_path = Path(dump_path).resolve()
    gtkw_path = Path(gtkw_path) if gtkw_path else dump_path.with_suffix(".gtkw")
    try:
        vars_ = read_header(dump_path)
    except FileNotFoundError:
        vars_ = []
    lines = [f"[*] {title}", f'[dumpfile] "{dump_path}"',
             f'[savefile] "{gtkw_path.resolve()}"', "[timestart] 0",
             "[sst_width] 250", "[signals_width] 320"]
    root = _design_root(vars_) if vars_ else ()
    for i in range(1, len(root) + 1):
        lines.append(f"[treeopen] {'.'.join(root[:i])}.")
    for label, members, closed in groups(vars_, ports) if vars_ else []:
        c = _CLOSED if closed else 0
        lines += [f"@{_GRP_BEGIN | _BLANK | c:x}", f"-{label}"]
        fmt = None
        for v in members:
            want = _BIN | _RJUSTIFY if v.width == 1 else _HEX | _RJUSTIFY
            if want != fmt:
                lines.append(f"@{want:x}")
                fmt = want
            lines.append(v.full_name)
        lines += [f"@{_GRP_END | _BLANK | c:x}", f"-{label}"]
    gtkw_path.write_text("\n".join(lines) + "\n")
    return gtkw_path
