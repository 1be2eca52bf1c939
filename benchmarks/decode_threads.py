"""Benchmark: decoding speed under OpenMP wait policies, on an idle and on a busy machine.

    .venv/bin/python benchmarks/decode_threads.py [--limit 10] [--beam 4] [--rounds 2]
        [--busy N] [--json] [--readme [FILE]]

``zeroskip`` (and every benchmark) sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose
otherwise (``sim/__init__.py``): PyTorch's OpenMP threads then sleep while they wait for work
instead of spinning. This measures why. It times ``zeroskip eval --beam B --limit N`` on the
shipped model and the first N utterances of ``--manifest`` (default the committed examples), in
three settings:

* ``PASSIVE``, PyTorch's threads (one per core): what ``zeroskip`` does now;
* ``ACTIVE``, PyTorch's threads: threads spinning while they wait (close to libgomp's default,
  which spins for a while before it sleeps: ``zeroskip`` before the change);
* one thread (``OMP_NUM_THREADS=1``), where the policy does not matter;

each with the machine idle and with ``--busy`` processes (default one per core) spinning in a
loop, standing in for a training run in the background. Settings alternate within each round;
the fastest of ``--rounds`` (eval's own decoding seconds) is reported with its ratio to
``PASSIVE``. Every run's WER must be
the same (the policy changes speed, not results). Run it with nothing else running. Writes
``build/bench/decode_threads.json``; ``--readme`` rewrites the README's ``decode-threads`` block.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from benchmarks.readme_block import BlockError, check_block, update_block  # noqa: E402
from sim.argtypes import nonnegative_int, positive_int  # noqa: E402

SETTINGS = (("PASSIVE", dict(OMP_WAIT_POLICY="PASSIVE")),
            ("ACTIVE", dict(OMP_WAIT_POLICY="ACTIVE")),
            ("1 thread", dict(OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")))

BUSY_LOOP = "while True:\n    pass\n"


class BenchError(Exception):
    """The benchmark cannot run (the message is one line)."""


def _eval(args, extra_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(extra_env)
    cmd = [sys.executable, "-m", "sim.cli", "eval", "--manifest", str(args.manifest),
           "--model", str(args.model), "--limit", str(args.limit), "--beam", str(args.beam),
           "--no-progress", "--json"]
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchError(f"`zeroskip {' '.join(cmd[3:])}` failed: {last}")
    rep = json.loads(out.stdout)
    return dict(seconds=rep["seconds"], wall=wall, wer=rep["all"]["wer"],
                utterances=rep["all"]["utterances"])


def run(args, progress=True) -> dict:
    if not args.model.exists():
        raise BenchError(f"model {args.model} does not exist (make model)")
    if not args.manifest.exists():
        raise BenchError(f"manifest {args.manifest} does not exist")
    loads = (("idle", 0), ("busy", args.busy)) if args.busy else (("idle", 0),)
    times: dict = {}
    wers = set()
    decoded = 0
    load_avg = os.getloadavg()[0]
    bar = tqdm(total=args.rounds * len(loads) * len(SETTINGS), desc="decode threads", unit="run",
               disable=not progress)
    for _ in range(args.rounds):
        for lname, n in loads:
            busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
            try:
                for sname, env in SETTINGS:
                    res = _eval(args, env)
                    wers.add(round(res["wer"], 12))
                    decoded = res["utterances"]
                    times.setdefault((lname, sname), []).append((res["seconds"], res["wall"]))
                    bar.update()
            finally:
                for p in busy:
                    p.kill()
                    p.wait()
    bar.close()
    if len(wers) != 1:
        raise BenchError(f"the settings decoded differently (WERs {sorted(wers)}): the policy "
                         f"must change speed only")
    rows = []
    for lname, n in loads:
        base = min(times[(lname, "PASSIVE")])[0]
        for sname, _ in SETTINGS:
            best = min(times[(lname, sname)])
            rows.append(dict(load=lname, busy=n, setting=sname, seconds=best[0], wall=best[1],
                             ratio=best[0] / base, runs=times[(lname, sname)]))
    manifest = args.manifest.resolve()
    manifest = manifest.relative_to(ROOT) if manifest.is_relative_to(ROOT) else manifest
    return dict(rows=rows, limit=args.limit, beam=args.beam, rounds=args.rounds,
                manifest=str(manifest), utterances=decoded,
                cpus=os.cpu_count(), load_average=load_avg, wer=wers.pop(),
                command=".venv/bin/python benchmarks/decode_threads.py")


def markdown(res: dict) -> str:
    lines = ["| machine | OpenMP threads | decoding s | vs PASSIVE | command wall s |",
             "|---|---|---|---|---|"]
    for r in res["rows"]:
        load = "idle" if r["load"] == "idle" else \
            f"{r['busy']} busy process{'es' if r['busy'] != 1 else ''}"
        setting = r["setting"] if r["setting"] == "1 thread" else f"{r['setting']} waits"
        lines.append(f"| {load} | {setting} | {r['seconds']:.1f} | {r['ratio']:.2f}x "
                     f"| {r['wall']:.1f} |")
    lines += ["", f"`zeroskip eval --beam {res['beam']} --limit {res['limit']}` on "
              f"`{res['manifest']}` ({res['utterances']} utterances): decoding seconds as eval "
              f"reports them (start-up excluded; the command's wall time beside them), the "
              f"fastest of {res['rounds']} rounds, settings alternated; "
              f"{res['cpus']} CPUs, load average {res['load_average']:.2f} at the start. "
              f"Every run gave the same WER.", "",
              f"Produced by `{res['command']}`."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default.ckpt")
    ap.add_argument("--manifest", type=Path, default=ROOT / "examples" / "manifest.jsonl",
                    help="utterances to decode (default: the committed examples)")
    ap.add_argument("--limit", type=positive_int, default=10, help="utterances (default 10)")
    ap.add_argument("--beam", type=positive_int, default=4, help="beam width (default 4)")
    ap.add_argument("--rounds", type=positive_int, default=2, help="rounds (default 2)")
    ap.add_argument("--busy", type=nonnegative_int, default=os.cpu_count() or 1,
                    help="busy-loop processes of the busy machine (default one per CPU; 0: "
                         "idle only)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--readme", nargs="?", const=str(ROOT / "README.md"), default=None,
                    metavar="FILE", help="rewrite the decode-threads block of README.md (or FILE)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    try:
        if args.readme:
            check_block(Path(args.readme), "decode-threads", BenchError)
        res = run(args, progress=args.progress)
        md = markdown(res)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "decode_threads.json").write_text(json.dumps(res, indent=1))
        if args.readme:
            update_block(Path(args.readme), "decode-threads", md, BenchError)
    except (BenchError, BlockError) as e:
        print(f"decode_threads: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res) if args.json else md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
