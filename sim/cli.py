"""``zeroskip``: the command line.

Subcommands
-----------
``matvec``   build a seeded random sparse layer, compile, simulate, compare bit for bit, report
``config``   print (and validate) a hardware configuration, with its derived values
``verilog``  write the accelerator's Verilog for a configuration

and the speech-model commands, each in its own module of :mod:`sim.commands` (``register``
adds the subcommand and sets a ``handler`` that returns the exit status): ``corpus``,
``train``, ``curves``, ``lm``, ``transcribe``, ``eval``, ``simulate``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from rtl.config import ConfigError, HardwareConfig
from .argtypes import positive_int as _positive

__all__ = ["main"]

#: Subcommands implemented in ``sim.commands.<name>`` (each module imports its heavy
#: dependencies inside its handler, so ``zeroskip --help`` stays fast).
COMMAND_MODULES = ("corpus", "train", "curves", "lm", "transcribe", "eval", "simulate")


def _hw(spec: str) -> HardwareConfig:
    try:
        return HardwareConfig.resolve(spec)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is outside [0, 1]")
    return v


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zeroskip",
        description="Hardware/software co-design simulator for a zero-skipping sparse "
                    "accelerator: compile, simulate cycle-accurately, compare bit for bit.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mv = sub.add_parser(
        "matvec", help="simulate one sparse quantized layer and compare with the reference",
        description="Build a seeded random fully-connected layer (magnitude-pruned to SPARSITY, "
                    "quantized per row to W_BITS), compile it into the accelerator's memory "
                    "image, run weight load, sparse matvec and dense matvec on a simulator, and "
                    "compare every output with the PyTorch integer reference. Exit status 1 if "
                    "any output differs.")
    mv.add_argument("--rows", type=_positive, default=256, help="output rows R (default 256)")
    mv.add_argument("--cols", type=_positive, default=256, help="input columns C (default 256)")
    mv.add_argument("--sparsity", type=_fraction, default=0.8,
                    help="fraction of weights pruned to zero (default 0.8)")
    mv.add_argument("--w-bits", type=int, choices=(4, 8), default=None,
                    help="weight bits (default: the config's weight_bits; overrides it if given)")
    mv.add_argument("--act-sparsity", type=_fraction, default=0.0,
                    help="fraction of input activations that are zero (default 0)")
    mv.add_argument("--hw", type=_hw, default=HardwareConfig.default(), metavar="tiny|default|FILE.json",
                    help="hardware configuration: a preset or a JSON file (default: default)")
    mv.add_argument("--simulator", choices=("amaranth", "verilator", "icarus"), default="verilator",
                    help="amaranth: Amaranth's Python simulator; verilator / icarus: cocotb on "
                         "the generated Verilog (default verilator)")
    mv.add_argument("--seed", type=int, default=0, help="seed of the layer and input (default 0)")
    mv.add_argument("--waves", metavar="FILE",
                    help="write waveforms (.vcd, or .fst on verilator) and FILE's .gtkw save file")
    mv.add_argument("--json", action="store_true", help="print one JSON object")

    cf = sub.add_parser("config", help="print a hardware configuration and its derived values")
    cf.add_argument("--hw", type=_hw, default=HardwareConfig.default(), metavar="tiny|default|FILE.json")
    cf.add_argument("--json", action="store_true", help="print only the primary parameters as JSON "
                    "(loadable with --hw FILE.json)")

    vg = sub.add_parser("verilog", help="write the accelerator's Verilog")
    vg.add_argument("--hw", type=_hw, default=HardwareConfig.default(), metavar="tiny|default|FILE.json")
    vg.add_argument("-o", "--output", default="-", help="output file (default: stdout)")

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sim.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"sim.commands.{name}":
                raise
            continue
        module.register(sub)
    return p


def _print_matvec(r: dict) -> None:
    ok = "BIT-EXACT" if r["bit_exact"] else f"MISMATCH ({len(r['mismatches'])}+ rows differ)"
    cfg = r["config"]
    print(f"layer      {r['rows']}x{r['cols']}, {r['w_bits']}-bit weights, sparsity {r['sparsity']:.2f} "
          f"({r['nnz']} nonzero), seed {r['seed']}")
    print(f"hardware   {cfg['lanes']} lanes x {cfg['m']} multipliers, K={cfg['k']}, "
          f"{cfg['dram_bytes_per_cycle']} DRAM B/cycle (config {r['config_digest']})")
    print(f"simulator  {r['simulator']}: {ok}")
    for m in r["mismatches"]:
        print(f"           row {m['row']}: expected {m['expected']}, hardware {m['got']}")
    print(f"matvec     {r['cycles']} cycles, ideal {r['ideal_cycles']:.0f} -> efficiency "
          f"{r['efficiency']:.3f}")
    print(f"dense      {r['dense_cycles']} cycles -> speedup from skipping {r['speedup_vs_dense']:.2f}x")
    wl = r.get("weight_load_cycles")
    if wl:
        print(f"load       weights {wl} cycles for {r['compressed_bytes']} compressed bytes, ideal "
              f"{r['ideal_load_cycles']:.0f} -> {r['load_efficiency']:.3f} of DRAM bandwidth; "
              f"whole load program {r['load_cycles']} cycles")
    c = r["counters"]["matvec"]
    print(f"counters   MACs issued {c['macs']}, skipped: zero weight {c['skip_zero_w']}, zero "
          f"activation {c['skip_zero_a']}; weight SRAM reads {c['wsram_reads']}")
    print(f"speed      {r['sim_cycles']} cycles in {r['sim_wall_seconds']:.2f} s = "
          f"{r['sim_cycles_per_second']:,.0f} cycles/s")
    if r.get("waves"):
        print(f"waves      {r['waves']} (GTKWave: gtkwave {r.get('gtkw')})")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None) is not None:
        return args.handler(args)
    if args.command == "config":
        cfg = args.hw
        if args.json:
            print(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        else:
            for k, v in cfg.to_dict().items():
                print(f"{k:22} {v}")
            print(f"{'digest':22} {cfg.digest}")
            for name in ("macs_per_cycle", "weight_sram_bytes", "dram_bytes", "wword_bits",
                         "aword_bits", "decompressor_keeps_up"):
                print(f"{name:22} {getattr(cfg, name)}  (derived)")
        return 0
    if args.command == "verilog":
        from rtl.verilog import to_verilog
        text = to_verilog(args.hw)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            Path(args.output).write_text(text)
        return 0

    from compiler.matvec import CompileError
    from .matvec import MatvecError, run_matvec
    w_bits = args.w_bits or args.hw.weight_bits
    try:
        report = run_matvec(rows=args.rows, cols=args.cols, sparsity=args.sparsity, w_bits=w_bits,
                            cfg=args.hw, simulator=args.simulator, seed=args.seed,
                            act_zero_fraction=args.act_sparsity, waves=args.waves)
    except (CompileError, MatvecError, ConfigError) as e:
        print(f"zeroskip matvec: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        _print_matvec(report)
    return 0 if report["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
