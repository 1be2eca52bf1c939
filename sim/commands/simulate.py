"""``zeroskip simulate``: one utterance through the compiled RNN-T on a simulated accelerator.

Audio -> int8 features (:func:`model.frontend.features_int8`) -> the checkpoint's integer model
(:class:`model.intref.IntRNNT`) compiled for a :class:`~rtl.config.HardwareConfig`
(:func:`compiler.rnnt.compile_rnnt`) -> the async host program
(:func:`sim.rnnt_host.run_utterance`: encoder per frame, joint and predict as the greedy or
beam search needs them) on one backend (:mod:`sim.backends`), every vector it reads compared
exactly with the integer reference running in lock step. The report: transcript and n-best,
the bit-exact verdict, whether the transcript equals ``zeroskip transcribe --int`` (decoded
separately by :mod:`model.decode` on :class:`~model.intref.IntDecoder`, as that command does),
cycles per program, per instruction class and per layer, efficiency, MACs issued and skipped,
DRAM traffic, the real-time factor at the configuration's clock and the simulation speed.

Figures
-------
``cycles``                 the accelerator's cycles over the utterance: the sum of every
                           program run (``encoder``, ``predict``, ``joint``), as the drivers
                           count them; ``init`` and the host-port transfers are reported apart
                           (``init_cycles``, ``host_port_words``); with ``--waves``, measured
                           on the HDL for the window's frames and the functional model's
                           estimate elsewhere (``hdl_cycles`` + ``functional_cycles``)
``rtf``                    ``cycles / clock_hz / audio_seconds``; ``rtf_with_host_port`` adds
                           one cycle per host-port word (features in, outputs and beam states
                           out and back; reference checks excluded)
``cycles_per_class``       from the class counters: ``load``, ``matvec``, ``vector`` (each
                           instruction's decode plus unit cycles) and ``control`` (the rest:
                           fetches, ``END``, leaving idle)
``cycles_per_layer``       per matrix (its LOADs, MATVEC and, for an LSTM, its LUTs and CELL),
                           ``embedding``, ``joint`` (sum and tanh), ``control``; only where the
                           backend reports cycles per instruction (the functional model)
``efficiency``             ideal MAC cycles / MATVEC cycles, ideal = MACs issued (nonzero
                           weight and activation) / (lanes * multipliers): the matvec
                           command's definition, over every MATVEC of the utterance
``efficiency_overall``     max(ideal MAC cycles, DRAM bytes / bytes per cycle) / ``cycles``:
                           the same physical limit against all the cycles (vector unit, loads,
                           control included)
``sim_wall_seconds``       wall time of the simulation proper (the backend's run, the lock-step
                           reference included; a cocotb build excluded, see ``build_seconds``)
``sim_cycles_per_second``  every simulated cycle (``init``, host-port words included) per wall
                           second of it; with ``--waves``, the HDL simulator's clock cycles
``sim_seconds_parts``      ``sim_wall_seconds`` split into ``startup`` (simulator process,
                           imports, reset), ``routine`` (the host program) and, within it,
                           ``dram_load`` (cocotb backends)

Decisions
---------
* **Which backends can run RNN-T programs is asked of the design, not listed here.** The
  programs need the vector instructions and the ``ARG`` register (``start_arg``, latched with
  ``start``; ``predict``'s ``MOVE.INDEXED`` takes the token from it). Before anything is built
  the HDL backends' design (:data:`sim.build.DEFAULT_DESIGN`, instantiated: cheap, no
  elaboration) must have a ``start_arg`` port, the one part of the vector unit's interface
  visible without simulating; and should a design that has it still lack an instruction, its
  controller stops with ``fault`` (unknown opcode), which every driver raises and which is
  reported as the same one-line error. Both follow the RTL as it grows: once the vector unit
  exists, ``--simulator amaranth|verilator|icarus`` just runs.
* **Waves** need an HDL simulator and are limited to a frame window (``--wave-frames A:B``,
  default the first frame) so that a whole utterance does not write gigabytes. The window is
  not made by switching tracing inside the simulator (Verilator ignores ``$dumpoff``): the
  routine runs on a switching driver (:class:`sim.window.WindowDriver`) that sends frames
  ``A..B-1`` to the HDL simulator and everything else to the functional model, copying the
  activation SRAM across at each switch (the host calls the driver's ``trace(on)`` at the frame
  boundaries: ``trace_frames`` of :func:`~sim.rnnt_host.run_utterance`). The HDL's simulated
  time advances only while it is driven, so the dump holds the image load and ``init``
  (mirrored on both), the copy in, frames ``A..B-1`` (their ``joint`` and ``predict`` runs
  included) and the copy out; the same on Verilator, Icarus and the Amaranth simulator. The
  report says so: ``hdl_frames`` ``[A, B]``, ``functional_frames`` (the ranges outside),
  ``hdl_cycles`` and ``functional_cycles`` (``cycles`` is their sum: measured inside the
  window, the functional model's estimate outside, so ``cycle_accurate`` is false),
  ``window`` (:meth:`~sim.window.WindowDriver.summary`); ``counters`` sum both (the copies
  excluded: :mod:`sim.window`), and ``sim_cycles`` are the HDL's clock cycles (the span of the
  dump). Every value is still compared with the integer reference, so a bad state copy is a
  mismatch. A window that starts past the last frame is an error; one that ends past it stops
  at the end.
* **The functional backend's cycles are an analytical estimate** (:mod:`sim.functional`):
  said in the text output, ``"cycle_accurate": false`` in JSON.
* **Defaults**: ``--hw default``, ``--beam 4`` and ``--nbest min(beam, 4)`` and, with the
  shipped model, the domain language model ``models/lm.json.gz`` fused into the beam search
  on the host (all as ``transcribe``, so that both commands give the same n-best with their
  defaults; ``--no-lm`` turns it off), ``--simulator functional`` (the one that runs the RNN-T
  today; name the others). The language model changes which hypotheses the host asks the
  accelerator to extend, never a value the accelerator computes.
* **Exit status**: 0; 1 on a mismatch (the message names frame, program, instruction, tensor,
  element and both values) or a transcript that differs from ``transcribe --int``; 2 on a
  usage or setup error (one line: audio, checkpoint, configuration, a model that does not
  fit, a backend that cannot run it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial

from ..argtypes import positive_int as _positive
from .lm import LM_BY_DEFAULT, add_lm_arguments, load_fusion
from .transcribe import add_model_argument, resolve_model

__all__ = ["register", "run", "simulate", "SimulateError", "SimulationMismatch",
           "parse_frames", "rnnt_support", "SIMULATORS"]

SIMULATORS = ("functional", "amaranth", "verilator", "icarus")
_HDL = ("amaranth", "verilator", "icarus")

_DESCRIPTION = """\
Transcribe one utterance on a simulated accelerator: int8 features, the checkpoint's integer
RNN-T compiled for a hardware configuration, the decoder loop on the simulator (one encoder
program per frame, joint and prediction programs as the search needs them), every value read
from the hardware compared with the integer reference (model/intref.py). Prints the transcript
and n-best, the bit-exact verdict, cycles (per program, instruction class and layer),
efficiency, MACs skipped, DRAM traffic, the real-time factor at the configuration's clock and
the simulation speed. Exit status 1 on a mismatch."""

_EPILOG = """\
examples:
  zeroskip simulate examples/01-weather.wav
  zeroskip simulate --json --beam 1 examples/01-weather.wav
  zeroskip simulate --model build/models/qat8.ckpt --hw cfg.json --check-internal speech.wav
  zeroskip simulate --simulator verilator --waves build/w.fst --wave-frames 10:12 a.wav
"""


class SimulateError(Exception):
    """A usage or setup error: the message is one line (exit status 2)."""


class SimulationMismatch(Exception):
    """A value read from the hardware differs from the reference (exit status 1).

    ``details`` holds the fields of :class:`sim.rnnt_host.RNNTMismatch` when they are known
    (the backend ran in this process), else only ``message``."""

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


def parse_frames(text: str) -> tuple[int, int | None]:
    """``"A:B"`` -> ``(A, B)`` (frames ``A <= t < B``), ``"A:"`` -> ``(A, None)`` (to the end),
    ``"A"`` -> ``(A, A + 1)``; raises :class:`SimulateError`."""
    a, sep, b = text.partition(":")
    try:
        start = int(a)
        stop = (int(b) if b.strip() else None) if sep else start + 1
    except ValueError:
        raise SimulateError(f"--wave-frames {text!r}: expected A:B (frames A to B-1, integers), "
                            f"A: (A to the end) or A") from None
    if start < 0 or (stop is not None and stop <= start):
        raise SimulateError(f"--wave-frames {text!r}: need 0 <= A < B")
    return start, stop


def _program_ops(crnnt) -> list[str]:
    """The operations of the RNN-T programs beyond the matvec slice's (LOAD, MATVEC, END),
    with the flags that matter (``MOVE.INDEXED``, ``LOAD.LUT``), from the compiled code."""
    from rtl import isa
    seen = []
    for name in crnnt.programs:
        for w in crnnt.program(name):
            d = isa.decode(crnnt.config, w)
            op = d["op"].name
            if op == "LOAD" and d["flags"] & isa.LoadFlags.LUT:
                op = "LOAD.LUT"
            elif op == "MOVE" and d["flags"] & isa.MoveFlags.INDEXED:
                op = "MOVE.INDEXED"
            elif op in ("LOAD", "MATVEC", "END"):
                continue
            if op not in seen:
                seen.append(op)
    return seen


def rnnt_support(simulator: str, cfg, crnnt, design=None) -> str | None:
    """``None`` when ``simulator`` can run ``crnnt``'s programs, else why not (one line).

    The functional model implements the whole ISA. For the HDL simulators the design is asked:
    it must have the ``ARG`` register's ``start_arg`` port (module docstring, "Decisions")."""
    if simulator == "functional":
        return None
    from sim.build import DEFAULT_DESIGN
    design = design or DEFAULT_DESIGN
    ops = ", ".join(_program_ops(crnnt))
    try:
        members = design.port_names(cfg)
    except Exception as e:  # noqa: BLE001 - any failure to build the component says the same
        return (f"the {simulator} simulator cannot run the RNN-T: its design {design.factory} "
                f"could not be instantiated for this configuration ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''})")
    if "start_arg" not in members:
        return (f"the {simulator} simulator cannot run RNN-T programs yet: its design "
                f"{design.factory} has no vector unit interface (no ARG register, port "
                f"start_arg), and the programs use {ops} (docs/rnnt-mapping.md, 'What the RTL "
                f"needs'); use --simulator functional")
    return None


def _fault_message(simulator: str, crnnt, err: Exception) -> str | None:
    """The one-line error for a design that stopped on an opcode it does not implement."""
    text = str(err)
    etype = getattr(err, "error_type", None) or type(err).__name__
    if etype != "DriverError" or "fault set" not in text:
        return None
    first = text.splitlines()[0]
    first = first.split(": ", 1)[1] if first.startswith("host routine failed") else first
    return (f"the {simulator} simulator cannot run RNN-T programs yet: the design stopped on an "
            f"instruction it does not implement ({first.removeprefix('DriverError: ')}); the "
            f"programs use {', '.join(_program_ops(crnnt))} (docs/rnnt-mapping.md, 'What the "
            f"RTL needs'); use --simulator functional")


def _simulator_errors() -> tuple:
    """The exception types that mean "the simulator could not be built or run"."""
    from sim.build import BuildError
    errs = (BuildError,)
    cocotb_backend = sys.modules.get("sim.cocotb_backend")   # imported if a cocotb backend ran
    if cocotb_backend is not None:
        errs += (cocotb_backend.SimulationError,)
    return errs


def _class_cycles(counters: dict, cycles: int) -> dict | None:
    names = {"load": "load_cycles", "matvec": "matvec_cycles", "vector": "vector_cycles"}
    if not all(n in counters for n in names.values()):
        return None
    out = {k: int(counters[n]) for k, n in names.items()}
    out["control"] = cycles - sum(out.values())
    return out


def _layer_cycles(crnnt, pc_cycles: dict | None, cycles: int) -> dict | None:
    if pc_cycles is None:
        return None
    where = crnnt.layer_of()
    if not where:
        return None
    out: dict[str, int] = {}
    for pc, (program, layer) in sorted(where.items()):
        if program == "init" or layer == "end":
            continue
        out[layer] = out.get(layer, 0) + int(pc_cycles.get(pc, 0))
    out["control"] = cycles - sum(out.values())
    return out


def simulate(audio, *, model=None, hw="default", simulator: str = "functional", beam: int = 4,
             nbest: int | None = None, check: str = "outputs", waves=None,
             wave_frames: str | None = None, progress: bool = False, design=None,
             max_frames: int | None = None, fusion=None) -> dict:
    """Run one utterance; returns the report (module docstring; keys as ``--json`` prints).

    Parameters
    ----------
    audio : path
    model : path, optional
        A quantized checkpoint (default :data:`~sim.commands.transcribe.DEFAULT_MODEL`).
    hw : str or HardwareConfig
        A preset, a JSON file or a configuration.
    simulator : {"functional", "amaranth", "verilator", "icarus"}
    beam, nbest : int
    check : {"outputs", "all", "none"}
        What the host compares (:data:`sim.rnnt_host.CHECKS`).
    waves : path, optional
    wave_frames : str, optional
        ``A:B`` (:func:`parse_frames`); default ``0:1`` with ``waves``.
    progress : bool
        A progress bar over frames on stderr (in-process backends).
    design : sim.build.Design, optional
        The HDL backends' design (default :data:`sim.build.DEFAULT_DESIGN`).
    max_frames : int, optional
        Simulate only the first ``max_frames`` encoder frames (the reference transcript is
        of the same frames; ``audio_seconds`` and the RTF cover them, ``frames_in_audio``
        says how many there were).
    fusion : model.lm.Fusion, optional
        A language model fused into the beam search (host side; the reference transcript
        uses it too).

    Raises
    ------
    SimulateError
        Usage and setup errors (one line).
    SimulationMismatch
        A value read from the hardware differs from the integer reference.
    """
    t_start = time.perf_counter()
    # -- options ---------------------------------------------------------------------------
    if simulator not in SIMULATORS:
        raise SimulateError(f"unknown simulator {simulator!r}; choose one of "
                            f"{', '.join(SIMULATORS)}")
    nbest = min(beam, 4) if nbest is None else nbest
    if nbest > beam:
        raise SimulateError(f"--nbest {nbest} is more than the beam width {beam}; raise --beam "
                            f"or lower --nbest")
    if wave_frames is not None and waves is None:
        raise SimulateError("--wave-frames selects the frames of --waves FILE; give --waves too")
    window = None
    if waves is not None:
        if simulator not in _HDL:
            raise SimulateError(f"--waves needs an HDL simulator (--simulator "
                                f"{'|'.join(_HDL)}); the {simulator} backend has no signals")
        window = parse_frames(wave_frames if wave_frames is not None else "0:1")

    import torch

    from compiler.matvec import CompileError
    from compiler.rnnt import compile_rnnt
    from model.audio import SAMPLE_RATE, AudioError, check_not_silent, load_audio
    from model.checkpoint import CheckpointError, load
    from model.decode import beam_search
    from model.frontend import features_int8
    from model.intref import IntRefError, IntRNNT
    from rtl.config import ConfigError, HardwareConfig

    from .. import backends, rnnt_host

    if isinstance(hw, HardwareConfig):
        cfg, hw_name = hw, f"config {hw.digest}"
    else:
        try:
            cfg, hw_name = HardwareConfig.resolve(hw), hw
        except (ConfigError, OSError) as e:
            raise SimulateError(f"--hw {hw}: {e}") from None

    # -- audio and model -------------------------------------------------------------------
    t0 = time.perf_counter()
    try:
        samples = load_audio(audio)
        check_not_silent(samples, audio)
    except AudioError as e:
        raise SimulateError(str(e)) from None
    feats = features_int8(torch.from_numpy(samples))
    audio_seconds = len(samples) / SAMPLE_RATE
    T_audio = T = int(feats.shape[0])
    if T == 0:
        raise SimulateError(f"{audio} is too short to transcribe ({audio_seconds:.3f} s)")
    if max_frames is not None:
        if max_frames < 1:
            raise SimulateError(f"--max-frames must be at least 1, not {max_frames}")
        if max_frames < T:
            feats = feats[:max_frames]
            audio_seconds *= max_frames / T
            T = max_frames
    if window is not None:
        a, b = window
        if a >= T:
            raise SimulateError(f"--wave-frames {wave_frames or '0:1'}: the utterance has only "
                                f"{T} frames (0..{T - 1})")
        window = (a, T if b is None else min(b, T))
    features_seconds = time.perf_counter() - t0

    path = resolve_model(model)
    if not path.exists():
        if model is None:
            raise SimulateError(f"the default model {path} does not exist yet: make it with "
                                f"`make model`, or pass --model CKPT (any quantized checkpoint)")
        raise SimulateError(f"model checkpoint {path} does not exist")
    try:
        im = IntRNNT.from_model(load(path).model)
    except CheckpointError as e:
        raise SimulateError(str(e)) from None
    except IntRefError as e:
        raise SimulateError(f"{path}: {e}") from None

    t0 = time.perf_counter()
    try:
        crnnt = compile_rnnt(cfg, im)
    except CompileError as e:
        raise SimulateError(f"the model {path.name} does not fit --hw {hw_name}: {e}") from None
    compile_seconds = time.perf_counter() - t0

    why = rnnt_support(simulator, cfg, crnnt, design)
    if why:
        raise SimulateError(why)
    options = {"design": design} if design is not None and simulator in _HDL else {}
    backend = backends.get_backend(simulator, cfg, **options)

    # -- the reference transcript: what `zeroskip transcribe --int` prints -----------------
    t0 = time.perf_counter()
    int_hyps = beam_search(im.decoder(), feats, beam=beam, nbest=nbest, fusion=fusion)
    int_seconds = time.perf_counter() - t0

    # -- simulate --------------------------------------------------------------------------
    in_process = simulator in ("functional", "amaranth")
    bar = None
    if progress and in_process:
        from tqdm import tqdm
        bar = tqdm(total=T, desc=f"simulate ({simulator})", unit="frame", file=sys.stderr,
                   leave=False)

    def on_frame(n):
        bar.update(n - bar.n)

    routine = partial(rnnt_host.run_utterance, crnnt=crnnt, feats_q=feats.numpy(),
                      int_model=im if check != "none" else None, beam=beam, nbest=nbest,
                      check=check, on_frame=on_frame if bar is not None else None,
                      trace_frames=window, fusion=fusion)
    if window is not None:
        from ..window import act_extent, run_windowed
        routine = partial(run_windowed, routine=routine, act_words=act_extent(crnnt),
                          setup_pcs=(crnnt.programs["init"]["pc"],))
    t0 = time.perf_counter()
    try:
        res = backend.run(routine, waves=waves)
    except rnnt_host.RNNTMismatch as e:
        raise SimulationMismatch(str(e), {
            "frame": e.frame, "program": e.program, "pc": e.pc, "tensor": e.tensor,
            "index": e.index, "expected": e.expected, "got": e.got}) from None
    except Exception as e:  # noqa: BLE001 - sorted below; anything else propagates
        msg = _fault_message(simulator, crnnt, e)
        if msg:
            raise SimulateError(msg) from None
        if getattr(e, "error_type", None) == "RNNTMismatch":        # from a cocotb process
            first = str(e).splitlines()[0].split("RNNTMismatch: ", 1)[-1]
            raise SimulationMismatch(first, {}) from None
        if isinstance(e, _simulator_errors()):          # no simulator, a failed build or run
            log = getattr(e, "log", None)
            raise SimulateError(f"{simulator}: {str(e).splitlines()[0]}"
                                + (f" (log: {log})" if log else "")) from None
        raise
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    stats = dict(getattr(backend, "stats", {}) or {})
    build_seconds = stats.get("build_seconds")
    sim_wall = wall - (build_seconds or 0.0)

    # -- figures ---------------------------------------------------------------------------
    cnt = res["counters"]
    cycles = int(res["cycles_total"])
    clock = cfg.clock_hz
    port = {k: int(v) for k, v in res["port_words"].items()}
    port_utt = sum(v for k, v in port.items() if k not in ("init", "checks"))
    macs = int(cnt.get("macs", 0))
    skip_w, skip_a = int(cnt.get("skip_zero_w", 0)), int(cnt.get("skip_zero_a", 0))
    dram = int(cnt.get("dram_bytes", 0))
    ideal_mac = macs / cfg.macs_per_cycle
    ideal_dram = dram / cfg.dram_bytes_per_cycle
    mv_cycles = int(cnt.get("matvec_cycles", 0))
    pc_cycles = getattr(getattr(backend, "driver", None), "machine", None)
    pc_cycles = getattr(pc_cycles, "pc_cycles", None)
    sim_cycles = stats.get("final_cycles")
    if sim_cycles is None:
        sim_cycles = cycles + int(res["init_cycles"]) + sum(port.values())
    text = res["text"]
    report = {
        "audio": str(audio),
        "text": text,
        "nbest": [{"text": t, "score": float(s)} for t, s in res["nbest"]],
        "bit_exact": res["bit_exact"],
        "check": check,
        "values_compared": int(res["compared"]),
        "transcript_equals_int": text == int_hyps[0][0],
        "int_text": int_hyps[0][0],
        "simulator": simulator,
        "cycle_accurate": simulator != "functional" and window is None,
        "model": str(path),
        "model_hash": crnnt.model_hash,
        "hw": hw_name,
        "config": cfg.to_dict(),
        "config_digest": cfg.digest,
        "residency": dict(crnnt.residency),
        "beam": beam,
        "lm": None if fusion is None else fusion.info,
        "frames": T,
        "frames_in_audio": T_audio,
        "audio_seconds": audio_seconds,
        "clock_hz": clock,
        "cycles": cycles,
        "cycles_per_frame": cycles / T,
        "rtf": cycles / clock / audio_seconds,
        "rtf_with_host_port": (cycles + port_utt) / clock / audio_seconds,
        "init_cycles": int(res["init_cycles"]),
        "runs": dict(res["runs"]),
        "cycles_per_program": {k: int(v) for k, v in res["cycles"].items()},
        "cycles_per_class": _class_cycles(cnt, cycles),
        "cycles_per_layer": _layer_cycles(crnnt, pc_cycles, cycles),
        "ideal_mac_cycles": ideal_mac,
        "matvec_cycles": mv_cycles,
        "efficiency": ideal_mac / mv_cycles if mv_cycles else 0.0,
        "efficiency_overall": max(ideal_mac, ideal_dram) / cycles if cycles else 0.0,
        "macs": macs,
        "macs_skipped": skip_w + skip_a,
        "macs_skipped_zero_weight": skip_w,
        "macs_skipped_zero_activation": skip_a,
        "dram_bytes": dram,
        "host_port_words": port,
        "sim_wall_seconds": sim_wall,
        "sim_cycles": int(sim_cycles),
        "sim_cycles_per_second": sim_cycles / sim_wall if sim_wall > 0 else 0.0,
        "sim_seconds_parts": _sim_parts(stats, sim_wall),
        "build_seconds": build_seconds,
        "seconds": {"features": features_seconds, "compile": compile_seconds,
                    "int_reference": int_seconds, "simulation": wall,
                    "total": time.perf_counter() - t_start},
        "counters": cnt,
    }
    if waves is not None:
        a, b = window
        w = res["window"]
        report["waves"] = str(waves)
        report["wave_frames"] = [a, b]
        report["hdl_frames"] = [a, b]
        report["functional_frames"] = [r for r in ([0, a], [b, T]) if r[0] < r[1]]
        report["hdl_cycles"] = int(w["hdl_run_cycles"])
        report["functional_cycles"] = int(w["functional_run_cycles"])
        report["window"] = w
    return report


# -- command line -----------------------------------------------------------------------------

def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to ``subparsers``; return its parser."""
    p = subparsers.add_parser("simulate", help="transcribe an utterance on a simulated "
                              "accelerator, checked bit for bit against the integer reference",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO", help="a WAV or FLAC file (any rate; mixed to mono)")
    add_model_argument(p)
    p.add_argument("--hw", default="default", metavar="tiny|default|FILE.json",
                   help="hardware configuration: a preset or a JSON file (default: default)")
    p.add_argument("--simulator", choices=SIMULATORS, default="functional",
                   help="functional: the numpy model of the ISA (exact values, estimated "
                        "cycles; default); amaranth: Amaranth's simulator; verilator / icarus: "
                        "cocotb on the generated Verilog (cycle-accurate)")
    p.add_argument("--beam", type=_positive, default=4, metavar="N",
                   help="beam width (default 4, as transcribe; 1 is greedy decoding)")
    p.add_argument("--nbest", type=_positive, default=None, metavar="N",
                   help="hypotheses to list, at most the beam width (default: up to 4)")
    add_lm_arguments(p, default_on=LM_BY_DEFAULT)
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="compare every program output (ENC, PRED, LOGITS) with the integer "
                        "reference (default); --no-check compares nothing")
    p.add_argument("--check-internal", action="store_true",
                   help="also compare every layer's h, c and gates and the joint's tanh")
    p.add_argument("--waves", metavar="FILE",
                   help="write waveforms (.vcd, .fst) for the frames of --wave-frames "
                        "(HDL simulators): those frames run on the HDL simulator, the others "
                        "on the functional model")
    p.add_argument("--wave-frames", metavar="A:B", default=None,
                   help="frames A to B-1 to simulate on the HDL and trace (default 0:1; 'A:' "
                        "to the end)")
    p.add_argument("--max-frames", type=_positive, default=None, metavar="N",
                   help="simulate only the first N encoder frames (30 ms each): quick looks "
                        "on the slower simulators")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (also off with --json)")
    p.set_defaults(handler=run)
    return p


def _err(msg: str) -> None:
    print(f"zeroskip simulate: error: {msg}", file=sys.stderr)


def _n(x) -> str:
    return f"{x:,}"


def _frames(a: int, b: int) -> str:
    """Frames ``a <= t < b`` in words."""
    return f"frame {a}" if b == a + 1 else f"frames {a}..{b - 1}"


def _print(r: dict) -> None:
    cfg = r["config"]
    print(f"{r['audio']}: {r['text']}")
    if len(r["nbest"]) > 1:
        for i, h in enumerate(r["nbest"], 1):
            print(f"  {i}. {h['score']:9.3f}  {h['text']}")
    if r["bit_exact"]:
        verdict = (f"BIT-EXACT: {_n(r['values_compared'])} values compared with the integer "
                   f"reference ({'outputs' if r['check'] == 'outputs' else 'every tensor'})")
    else:
        verdict = "NOT CHECKED (--no-check)"
    same = ("equals `transcribe --int`'s" if r["transcript_equals_int"] else
            f"DIFFERS from `transcribe --int`'s {r['int_text']!r}")
    print(f"verdict    {verdict}; transcript {same}")
    print(f"hardware   {cfg['lanes']} lanes x {cfg['m']} multipliers, K={cfg['k']}, "
          f"{cfg['weight_bits']}-bit weights, {cfg['clock_hz'] / 1e6:g} MHz (--hw {r['hw']}, "
          f"digest {r['config_digest']}); weights {r['residency']['weights']}, parameters "
          f"{r['residency']['params']}")
    if r.get("hdl_frames"):
        a, b = r["hdl_frames"]
        est = (f" for {_frames(a, b)} ({_n(r['hdl_cycles'])} cycles), the functional model "
               f"elsewhere ({_n(r['functional_cycles'])} cycles, an analytical estimate)")
    elif not r["cycle_accurate"]:
        est = " -- cycles are an analytical estimate, not cycle-accurate"
    else:
        est = ""
    print(f"simulator  {r['simulator']}{est}")
    from model.lm import describe
    lm = f", {describe(r['lm'])}" if r.get("lm") else ""
    print(f"audio      {r['audio_seconds']:.2f} s, {r['frames']} frames, beam {r['beam']}{lm}")
    print(f"cycles     {_n(r['cycles'])} ({_n(round(r['cycles_per_frame']))} per frame); "
          f"real-time factor {r['rtf']:.4f} at {r['clock_hz'] / 1e6:g} MHz "
          f"({r['rtf_with_host_port']:.4f} with the host port); init {_n(r['init_cycles'])}")
    total = r["cycles"] or 1
    progs = "  ".join(f"{k} {_n(v)} ({r['runs'][k]} runs)"
                      for k, v in r["cycles_per_program"].items())
    print(f"  program  {progs}")
    if r["cycles_per_class"]:
        cls = "  ".join(f"{k} {_n(v)} ({100 * v / total:.1f} %)"
                        for k, v in r["cycles_per_class"].items())
        print(f"  class    {cls}")
    if r["cycles_per_layer"]:
        lay = "  ".join(f"{k} {_n(v)}" for k, v in r["cycles_per_layer"].items())
        print(f"  layer    {lay}")
    print(f"efficiency {r['efficiency']:.3f} (ideal {_n(round(r['ideal_mac_cycles']))} MAC "
          f"cycles / {_n(r['matvec_cycles'])} MATVEC cycles); overall "
          f"{r['efficiency_overall']:.3f} of all cycles")
    dense = r["macs"] + r["macs_skipped"]
    print(f"MACs       issued {_n(r['macs'])}, skipped {_n(r['macs_skipped'])} "
          f"({100 * r['macs_skipped'] / dense if dense else 0:.1f} % of {_n(dense)}: zero "
          f"weight {_n(r['macs_skipped_zero_weight'])}, zero activation "
          f"{_n(r['macs_skipped_zero_activation'])})")
    print(f"DRAM       {_n(r['dram_bytes'])} bytes over the utterance")
    port = r["host_port_words"]
    print("host port  " + ", ".join(f"{k} {_n(v)}" for k, v in port.items() if v) + " words")
    s = r["seconds"]
    build = f", build {r['build_seconds']:.1f} s" if r.get("build_seconds") else ""
    print(f"speed      {_n(r['sim_cycles'])} cycles simulated in {r['sim_wall_seconds']:.2f} s "
          f"= {_n(round(r['sim_cycles_per_second']))} cycles/s{build} (features "
          f"{s['features']:.2f} s, compile {s['compile']:.2f} s, transcribe --int "
          f"{s['int_reference']:.2f} s, total {s['total']:.2f} s)")
    parts = r.get("sim_seconds_parts") or {}
    if parts:
        print("           of which " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s"
                                                  for k, v in parts.items()))
    if r.get("waves"):
        a, b = r["wave_frames"]
        print(f"waves      {r['waves']} ({_frames(a, b)}, after the image load, init and the "
              f"activation-SRAM copy)")


def _sim_parts(stats: dict, sim_wall: float) -> dict:
    """``sim_wall_seconds`` split: ``startup`` (simulator process start, Python imports, the
    job's unpickling, reset), ``routine`` (the host program) and, inside it, ``dram_load``
    (the image's DRAM words, where the backend measures it)."""
    routine = stats.get("routine_seconds")
    if routine is None:
        return {}
    parts = {"startup": max(0.0, sim_wall - routine), "routine": routine}
    if stats.get("dram_seconds") is not None:
        parts["dram_load"] = stats["dram_seconds"]
    return parts


def run(args: argparse.Namespace) -> int:
    """Handle ``zeroskip simulate``; returns the exit status."""
    check = "none" if not args.check else ("all" if args.check_internal else "outputs")
    if args.check_internal and not args.check:
        _err("--check-internal and --no-check contradict each other")
        return 2
    from model.lm import LMError
    try:
        fusion = load_fusion(args, default_model=args.model is None)
    except LMError as e:
        _err(str(e))
        return 2
    try:
        report = simulate(args.audio, model=args.model, hw=args.hw, simulator=args.simulator,
                          beam=args.beam, nbest=args.nbest, check=check, waves=args.waves,
                          wave_frames=args.wave_frames, max_frames=args.max_frames,
                          progress=args.progress and not args.json, fusion=fusion)
    except SimulateError as e:
        _err(str(e))
        return 2
    except SimulationMismatch as e:
        _err(str(e))
        if args.json:
            print(json.dumps({"audio": args.audio, "simulator": args.simulator,
                              "bit_exact": False, "mismatch": dict(e.details, message=str(e))}))
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    if not report["transcript_equals_int"]:
        _err(f"the transcript {report['text']!r} differs from `transcribe --int`'s "
             f"{report['int_text']!r} although every output was bit-exact")
        return 1
    return 0

