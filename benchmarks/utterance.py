"""Benchmark: whole utterances through the cycle-accurate accelerator (issue 4).

    .venv/bin/python benchmarks/utterance.py [--model CKPT | --random-model] [--hw default]
        [--examples DIR] [--limit N] [--beam 4] [--compare-frames N]
        [--simulators verilator,icarus,amaranth] [--out build/bench] [--readme [FILE]] [--json]

Part 1: every example utterance (``examples/manifest.jsonl``) through ``zeroskip simulate`` on
cocotb + Verilator, the first simulator of ``--simulators``: transcript (equal to ``transcribe
--int``'s?), bit-exact verdict, cycles, real-time factor at the configuration's clock, MATVEC
efficiency, simulated cycles per wall second, wall seconds end to end (after the one-time
build). Part 2: the first example's first ``--compare-frames`` frames on every simulator of
``--simulators``: the same cycles on each (checked), and their speeds as ratios to the first.

The model: ``--model`` (default ``models/default.ckpt``), or ``--random-model``: the default
preset with seeded random weights, pruned to 80 % and quantized to 4 bits (the shipped model's
shape, sparsity and width). Its transcripts are meaningless but its cycles, efficiency and
simulation speed are those of a trained model of the same shape to within the activation
sparsity; the table says which model it ran.

Targets (issue 4) are checked as pass/fail: bit-exact everywhere with the ``--int`` transcript;
Verilator >= 1,000,000 simulated cycles per wall second over whole utterances; 3 s of audio in
<= 60 s of wall time end to end; MATVEC efficiency >= 0.85; RTF <= 0.05 at the clock.

Resuming: each run's report is cached in ``OUT/utterance/<key>.json``, keyed by the model's,
the audio's and the simulation sources' SHA-256 (``rtl/``, ``compiler/``, ``sim/``,
``model/intref.py``), the configuration digest, simulator, beam and frames. Writes
``OUT/utterance.json`` and ``OUT/utterance.md``; ``--readme`` replaces the block between
``<!-- utterance:begin -->`` and ``<!-- utterance:end -->`` of README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from benchmarks.readme_block import BlockError, check_block, update_block  # noqa: E402
from model.checkpoint import atomic_write  # noqa: E402
from model.lm import describe  # noqa: E402
from sim.argtypes import positive_int  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "models/default.ckpt"
DEFAULT_SIMULATORS = "verilator,icarus,amaranth"
CACHE_VERSION = 1
#: The issue's targets.
MIN_CYCLES_PER_SECOND = 1_000_000
MAX_WALL_FOR_3S = 60.0
MIN_EFFICIENCY = 0.85
MAX_RTF = 0.05


class BenchError(Exception):
    """A reason to stop with exit status 2 (one line)."""


def _sha256_bytes(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(hashlib.sha256(b).digest())
    return h.hexdigest()


def sources_hash() -> str:
    files = sorted([*ROOT.glob("rtl/*.py"), *ROOT.glob("compiler/*.py"), *ROOT.glob("sim/*.py"),
                    ROOT / "model" / "intref.py"])
    return _sha256_bytes(*(f.relative_to(ROOT).as_posix().encode() + f.read_bytes()
                           for f in files))


def random_model(path: Path) -> Path:
    """The default preset, seeded random weights, 80 % pruned, 4-bit: written once to ``path``."""
    if path.exists():
        return path
    from model.checkpoint import save
    from model.prune import random_stand_in
    m = random_stand_in("default", seed=0, sparsity=0.8, w_bits=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path, m)
    return path


def _examples(directory: Path, limit: int | None) -> list[Path]:
    manifest = directory / "manifest.jsonl"
    try:
        lines = [json.loads(x) for x in manifest.read_text().splitlines() if x.strip()]
    except (OSError, ValueError) as e:
        raise BenchError(f"cannot read {manifest}: {e}; make it with `make examples`") from None
    files = [directory / Path(x["audio"]).name for x in lines]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise BenchError(f"{missing[0]} is listed in {manifest} but missing; `make examples`")
    return files[:limit] if limit else files


def run_one(cache_dir: Path, key: dict, **kwargs) -> dict:
    """``sim.commands.simulate.simulate(**kwargs)``, or its cached report for ``key``."""
    from sim.commands.simulate import simulate
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"{name}.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["report"]
    except (OSError, ValueError):
        pass
    report = simulate(**kwargs)
    report.pop("counters", None)
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps({"key": key, "report": report}, indent=1) + "\n").encode())
    return report


def _row(r: dict) -> dict:
    keep = ("audio", "text", "int_text", "bit_exact", "transcript_equals_int", "frames",
            "audio_seconds", "cycles", "rtf", "efficiency", "ideal_mac_cycles", "matvec_cycles",
            "macs", "macs_skipped", "sim_cycles", "sim_wall_seconds", "sim_cycles_per_second",
            "build_seconds", "cycles_per_class", "simulator")
    out = {k: r.get(k) for k in keep}
    out["wall_seconds"] = r["seconds"]["total"] - (r.get("build_seconds") or 0.0)
    return out


def targets(utts: list[dict], compare: list[dict]) -> list[dict]:
    def t(name, value, ok, goal):
        """``pass``: True, False, or None (not measured)."""
        return {"target": name, "value": value, "goal": goal,
                "pass": None if ok is None else bool(ok)}
    sim_cycles = sum(u["sim_cycles"] for u in utts)
    sim_wall = sum(u["sim_wall_seconds"] for u in utts)
    speed = sim_cycles / sim_wall if sim_wall else 0.0
    per_3s = max(3.0 * u["wall_seconds"] / u["audio_seconds"] for u in utts)
    eff = sum(u["ideal_mac_cycles"] for u in utts) / max(1, sum(u["matvec_cycles"] for u in utts))
    rtf = max(u["rtf"] for u in utts)
    exact = all(u["bit_exact"] and u["transcript_equals_int"] for u in utts + compare)
    hdl = [c for c in compare if c["simulator"] != "functional"]
    # fewer than two cycle-accurate simulators compared: nothing to agree or disagree
    same = len({c["cycles"] for c in hdl}) <= 1 if len(hdl) >= 2 else None
    return [
        t("bit-exact, transcript = transcribe --int (every utterance and simulator)", exact,
          exact, "all"),
        t("identical cycles on every cycle-accurate simulator", same, same, "all equal"),
        t(f"{utts[0]['simulator']} simulated cycles per wall second", speed,
          speed >= MIN_CYCLES_PER_SECOND, f">= {MIN_CYCLES_PER_SECOND:,}"),
        t("wall seconds for 3 s of audio, end to end after the build", per_3s,
          per_3s <= MAX_WALL_FOR_3S, f"<= {MAX_WALL_FOR_3S:g}"),
        t("MATVEC efficiency over all utterances", eff, eff >= MIN_EFFICIENCY,
          f">= {MIN_EFFICIENCY}"),
        t("real-time factor (worst utterance)", rtf, rtf <= MAX_RTF, f"<= {MAX_RTF}"),
    ]


def markdown(result: dict) -> str:
    utts, cmp_, tg = result["utterances"], result["compare"], result["targets"]
    lines = [f"Model: {result['model_label']}; hardware `{result['hw']}` "
             f"(config {result['config_digest']}, {result['clock_hz'] / 1e6:g} MHz); beam "
             f"{result['beam']}" + (f" + {describe(result['lm'])}" if result.get("lm") else "")
             + f". Command: `{result['command']}`", "",
             "| utterance | s | frames | bit-exact | = `--int` | cycles | RTF | efficiency | "
             "sim cycles/s | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for u in utts:
        lines.append(f"| {Path(u['audio']).name} | {u['audio_seconds']:.2f} | {u['frames']} | "
                     f"{'yes' if u['bit_exact'] else 'NO'} | "
                     f"{'yes' if u['transcript_equals_int'] else 'NO'} | {u['cycles']:,} | "
                     f"{u['rtf']:.4f} | {u['efficiency']:.3f} | "
                     f"{u['sim_cycles_per_second']:,.0f} | {u['wall_seconds']:.1f} |")
    if cmp_:
        base = cmp_[0]
        lines += ["", f"Simulators on the first {base['frames']} frames of "
                  f"{Path(base['audio']).name}:", "",
                  "| simulator | cycles | sim wall s | sim cycles/s | vs " + base["simulator"]
                  + " | build s |", "|---|---|---|---|---|---|"]
        for c in cmp_:
            ratio = c["sim_cycles_per_second"] / base["sim_cycles_per_second"]
            build = c.get("build_seconds")
            lines.append(f"| {c['simulator']} | {c['cycles']:,} | {c['sim_wall_seconds']:.1f} | "
                         f"{c['sim_cycles_per_second']:,.0f} | {ratio:.3g}x | "
                         f"{'-' if build is None else f'{build:.0f}'} |")
    lines += ["", "Targets:", ""]
    for t in tg:
        v = t["value"]
        v = f"{v:,.3f}" if isinstance(v, float) else str(v)
        verdict = {True: "PASS", False: "FAIL", None: "NOT MEASURED"}[t["pass"]]
        lines.append(f"- {verdict}: {t['target']}: {v} "
                     f"(goal {t['goal']})")
    return "\n".join(lines)


def _command(args) -> str:
    parts = [".venv/bin/python", "benchmarks/utterance.py"]
    for flag, value, default in (("--model", args.model, None), ("--hw", args.hw, "default"),
                                 ("--limit", args.limit, None), ("--beam", args.beam, 4),
                                 ("--compare-frames", args.compare_frames, 2),
                                 ("--simulators", args.simulators, DEFAULT_SIMULATORS)):
        if value is not None and value != default:
            parts += [flag, str(value)]
    if args.random_model:
        parts.append("--random-model")
    if args.lm:
        parts += ["--lm", args.lm]
    if args.no_lm:
        parts.append("--no-lm")
    return shlex.join(parts)


def run(args, *, log=lambda msg: None) -> dict:
    from model.checkpoint import CheckpointError, read_header
    from rtl.config import ConfigError, HardwareConfig
    from sim.build import simulator_available
    from sim.commands.simulate import SimulateError, SimulationMismatch

    out = Path(args.out)
    readme = Path(args.readme) if args.readme else None
    if readme is not None:
        check_block(readme, "utterance", BenchError)
    sims = [s.strip() for s in args.simulators.split(",") if s.strip()]
    bad = [s for s in sims if s not in ("verilator", "icarus", "amaranth", "functional")]
    if not sims or bad:
        raise BenchError(f"--simulators {args.simulators}: choose from verilator, icarus, "
                         f"amaranth, functional")
    for s in sims:
        why = simulator_available(s) if s in ("verilator", "icarus") else None
        if why:
            raise BenchError(f"{s}: {why}")
    try:
        cfg = HardwareConfig.resolve(args.hw)
    except (ConfigError, OSError) as e:
        raise BenchError(f"--hw {args.hw}: {e}") from None
    if args.random_model:
        model = random_model(out / "utterance" / "random-default-q4-s80.ckpt")
        label = "random weights, default preset, 80 % pruned, 4-bit (timing only)"
    else:
        model = Path(args.model or DEFAULT_MODEL)
        if not model.exists():
            raise BenchError(f"{model} does not exist: train it (`make model`), pass --model "
                             f"CKPT, or --random-model for timing figures")
        label = f"`{model}`"
    try:
        read_header(model)
    except CheckpointError as e:
        raise BenchError(str(e)) from None
    files = _examples(Path(args.examples), args.limit)
    from model.lm import LMError
    from sim.commands.lm import load_fusion
    try:                                    # as `zeroskip simulate` decodes
        fusion = load_fusion(args, default_model=True)
    except LMError as e:
        raise BenchError(str(e)) from None
    lm_key = None if fusion is None else dict(
        sha256=_sha256_bytes(fusion.lm.path.read_bytes()), weight=fusion.weight,
        bonus=fusion.bonus)
    model_sha = _sha256_bytes(model.read_bytes())
    src = sources_hash()
    cache = out / "utterance"

    def one(audio, simulator, frames):
        key = dict(version=CACHE_VERSION, model=model_sha, audio=_sha256_bytes(audio.read_bytes()),
                   sources=src, config=cfg.digest, simulator=simulator, beam=args.beam,
                   frames=frames, lm=lm_key)
        try:
            return _row(run_one(cache, key, audio=str(audio), model=str(model), hw=cfg,
                                simulator=simulator, beam=args.beam, max_frames=frames,
                                fusion=fusion))
        except (SimulateError, SimulationMismatch) as e:
            raise BenchError(f"{audio.name} on {simulator}: {e}") from None

    utts = []
    for f in tqdm(files, desc=f"utterances on {sims[0]}", unit="utt", disable=not args.progress):
        utts.append(one(f, sims[0], None))
        log(f"{f.name}: {utts[-1]['cycles']:,} cycles, "
            f"{utts[-1]['sim_cycles_per_second']:,.0f} cycles/s")
    compare = []
    if args.compare_frames:
        for s in tqdm(sims, desc="simulators", unit="sim", disable=not args.progress):
            compare.append(one(files[0], s, args.compare_frames))
    result = {"model": str(model), "model_label": label, "hw": args.hw,
              "config_digest": cfg.digest, "clock_hz": cfg.clock_hz, "beam": args.beam,
              "lm": None if fusion is None else dict(lm_key, path=str(fusion.lm.path),
                                                     **fusion.info),
              "command": _command(args), "utterances": utts, "compare": compare,
              "targets": targets(utts, compare)}
    md = markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "utterance.json", (json.dumps(result, indent=1) + "\n").encode())
    atomic_write(out / "utterance.md", (md + "\n").encode())
    if readme is not None:
        update_block(readme, "utterance", md, BenchError)
    result["markdown"] = md
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, metavar="CKPT",
                    help=f"quantized checkpoint (default {DEFAULT_MODEL})")
    ap.add_argument("--random-model", action="store_true",
                    help="seeded random default-preset model, 80 %% pruned, 4-bit (timing only)")
    ap.add_argument("--hw", default="default", metavar="tiny|default|FILE.json")
    ap.add_argument("--examples", default=str(ROOT / "examples"), metavar="DIR",
                    help="directory with manifest.jsonl and the WAVs (default examples/)")
    ap.add_argument("--limit", type=positive_int, default=None, metavar="N",
                    help="only the first N examples")
    ap.add_argument("--beam", type=positive_int, default=4, metavar="N")
    ap.add_argument("--lm", default=None, metavar="FILE",
                    help=f"language model fused into the beam search, as `zeroskip simulate` "
                         f"does (default models/lm.json.gz when it exists and --beam > 1)")
    ap.add_argument("--no-lm", action="store_true", help="decode without a language model")
    ap.add_argument("--compare-frames", type=int, default=2, metavar="N",
                    help="frames of the first example run on every simulator (0: skip part 2)")
    ap.add_argument("--simulators", default=DEFAULT_SIMULATORS, metavar="LIST",
                    help=f"comma-separated, the first runs part 1 (default {DEFAULT_SIMULATORS})")
    ap.add_argument("--out", default="build/bench", metavar="DIR")
    ap.add_argument("--readme", nargs="?", const=str(ROOT / "README.md"), default=None,
                    metavar="FILE", help="replace the marked block of README.md (or FILE)")
    ap.add_argument("--json", action="store_true", help="print the result object as JSON")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.random_model and args.model:
        print("utterance: error: --model and --random-model exclude each other", file=sys.stderr)
        return 2
    log = (lambda msg: tqdm.write(msg, file=sys.stderr)) if args.progress else (lambda m: None)
    try:
        result = run(args, log=log)
    except BenchError as e:
        print(f"utterance: error: {e}", file=sys.stderr)
        return 2
    md = result.pop("markdown")
    print(json.dumps(result) if args.json else md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
