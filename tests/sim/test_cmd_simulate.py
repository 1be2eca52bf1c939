"""``zeroskip simulate`` (sim/commands/simulate.py) on the functional backend with a tiny
quantized model: the report's fields and their consistency, the transcript against
``zeroskip transcribe --int``, the text output, every error path (one line, exit 2), the
mismatch path (exit 1) and the detection of backends that cannot run RNN-T programs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compiler.rnnt import fit_config
from model.audio import write_wav
from model.checkpoint import save
from model.frontend import num_encoder_frames
from model.intref import IntRNNT
from model.prune import random_stand_in
from model.rnnt import rnnt
from rtl.config import HardwareConfig
from sim.cli import main
from sim.commands import simulate as cmd
from sim.driver import DriverError
from sim.cocotb_backend import _period_ps as cocotb_period_ps
from tests.sim import standin
from tests.sim.conftest import backend_params

FIELDS = ("text", "nbest", "bit_exact", "cycles", "frames", "audio_seconds", "clock_hz", "rtf",
          "efficiency", "simulator", "sim_wall_seconds", "sim_cycles_per_second", "counters",
          "transcript_equals_int", "cycle_accurate")


def _model(w_bits=4, sparsity=0.6):
    """A random tiny model, quantized (larger logits, so that the transcript is not all
    blanks)."""
    return random_stand_in("tiny", seed=3, sparsity=sparsity, w_bits=w_bits)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("simulate")
    m = _model()
    save(d / "q4.ckpt", m)
    save(d / "float.ckpt", rnnt(preset="tiny"))
    cfg = fit_config(HardwareConfig.tiny(), IntRNNT.from_model(m))
    (d / "fit.json").write_text(cfg.to_json())
    rng = np.random.default_rng(0)
    t = np.arange(12000) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_wav(d / "a.wav", audio + 0.01 * rng.standard_normal(len(t)))
    (d / "text.wav").write_text("not audio at all\n")
    return d


def _args(files, *extra):
    return ["simulate", "--model", str(files / "q4.ckpt"), "--hw", str(files / "fit.json"),
            *extra, str(files / "a.wav")]


@pytest.mark.parametrize("beam", [1, 3])
def test_json_fields_are_consistent(files, capsys, beam):
    assert main(_args(files, "--json", "--beam", str(beam))) == 0
    cap = capsys.readouterr()
    r = json.loads(cap.out)
    assert cap.err == ""                                    # no progress bar with --json
    for f in FIELDS:
        assert f in r, f
    assert r["bit_exact"] is True and r["values_compared"] > 0
    assert r["simulator"] == "functional" and r["cycle_accurate"] is False
    assert r["frames"] == num_encoder_frames(12000)
    assert r["audio_seconds"] == pytest.approx(0.75)
    cfg = HardwareConfig.from_json((files / "fit.json").read_text())
    assert r["clock_hz"] == cfg.clock_hz and r["config_digest"] == cfg.digest
    assert r["rtf"] == pytest.approx(r["cycles"] / r["clock_hz"] / r["audio_seconds"])
    assert r["cycles"] == sum(r["cycles_per_program"].values())
    assert r["cycles"] == sum(r["cycles_per_class"].values())
    assert r["cycles"] == sum(r["cycles_per_layer"].values())
    assert r["cycles_per_class"]["matvec"] == r["matvec_cycles"] == r["counters"]["matvec_cycles"]
    assert set(r["cycles_per_layer"]) >= {"encoder.0", "enc_proj", "pred_lstm", "out", "joint"}
    assert r["runs"]["encoder"] == r["frames"]
    assert r["efficiency"] == pytest.approx(r["macs"] / cfg.macs_per_cycle / r["matvec_cycles"])
    assert 0 < r["efficiency"] <= 1
    assert r["macs"] == r["counters"]["macs"]
    assert r["macs_skipped"] == r["counters"]["skip_zero_w"] + r["counters"]["skip_zero_a"] > 0
    assert r["sim_cycles_per_second"] == pytest.approx(r["sim_cycles"] / r["sim_wall_seconds"])
    assert r["sim_cycles"] >= r["cycles"] + r["init_cycles"]
    assert len(r["nbest"]) == beam and r["text"] == r["nbest"][0]["text"]
    # the transcript is what `zeroskip transcribe --int` prints, and not trivially empty
    assert r["transcript_equals_int"] is True and r["text"].strip()
    assert main(["transcribe", "--int", "--json", "--beam", str(beam), "--model",
                 str(files / "q4.ckpt"), str(files / "a.wav")]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert ref["text"] == r["text"]
    if beam > 1:
        assert ref["nbest"] == r["nbest"]


def test_max_frames(files, capsys):
    assert main(_args(files, "--json", "--beam", "1", "--max-frames", "5")) == 0
    r = json.loads(capsys.readouterr().out)
    total = num_encoder_frames(12000)
    assert r["frames"] == r["runs"]["encoder"] == 5 and r["frames_in_audio"] == total
    assert r["audio_seconds"] == pytest.approx(0.75 * 5 / total)
    assert r["bit_exact"] is True and r["transcript_equals_int"] is True
    with pytest.raises(SystemExit) as e:                    # argparse: usage error
        main(_args(files, "--max-frames", "0"))
    assert e.value.code == 2 and "--max-frames" in capsys.readouterr().err


def test_text_output(files, capsys):
    assert main(_args(files, "--beam", "2", "--check-internal")) == 0
    cap = capsys.readouterr()
    out = cap.out
    assert out.startswith(f"{files / 'a.wav'}: ")
    assert "BIT-EXACT" in out and "every tensor" in out
    assert "transcript equals `transcribe --int`'s" in out
    assert "analytical estimate, not cycle-accurate" in out
    for word in ("real-time factor", "efficiency", "MACs", "DRAM", "cycles/s", "  layer",
                 "  class", "  program"):
        assert word in out, word
    assert "frame" in cap.err                                # the progress bar


def test_no_check(files, capsys):
    assert main(_args(files, "--json", "--no-check", "--beam", "1")) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bit_exact"] is None and r["values_compared"] == 0
    assert r["transcript_equals_int"] is True


@pytest.mark.parametrize("args, match", [
    (lambda d: ["--model", str(d / "nope.ckpt")], "nope.ckpt does not exist"),
    (lambda d: ["--model", str(d / "float.ckpt")], "float.ckpt: IntRNNT.from_model: the model "
                                                   "is not quantized"),
    (lambda d: ["--model", str(d / "text.wav")], "not a zeroskip checkpoint"),
    (lambda d: ["--hw", "tiny"], "does not fit --hw tiny: the activation SRAM"),
    (lambda d: ["--hw", str(d / "nope.json")], "neither a preset"),
    (lambda d: ["--beam", "2", "--nbest", "3"], "--nbest 3 is more than the beam width 2"),
    (lambda d: ["--waves", str(d / "w.vcd")], "--waves needs an HDL simulator"),
    (lambda d: ["--wave-frames", "1:2"], "give --waves too"),
    (lambda d: ["--simulator", "verilator", "--waves", "w.vcd", "--wave-frames", "3:1"],
     "need 0 <= A < B"),
    (lambda d: ["--simulator", "icarus", "--waves", "w.vcd", "--wave-frames", "a:b"],
     "expected A:B"),
    (lambda d: ["--simulator", "verilator", "--waves", "w.vcd", "--wave-frames", "24:30"],
     "the utterance has only 24 frames (0..23)"),
    (lambda d: ["--simulator", "icarus", "--waves", "w.vcd", "--max-frames", "4",
                "--wave-frames", "4:"], "the utterance has only 4 frames (0..3)"),
    (lambda d: ["--simulator", "amaranth", "--wave-frames", "0:1"], "give --waves too"),
    (lambda d: ["--no-check", "--check-internal"], "contradict"),
    (lambda d: ["--lm", str(d / "text.wav")], "not a zeroskip language model"),
    (lambda d: ["--lm", str(d / "nope.gz")], "does not exist"),
    (lambda d: ["--beam", "1", "--lm", str(d / "text.wav")], "use --beam 2 or more"),
])
def test_errors_are_one_line_exit_2(files, capsys, args, match):
    argv = ["simulate", "--model", str(files / "q4.ckpt"), "--hw", str(files / "fit.json")]
    code = main(argv + args(files) + [str(files / "a.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and match in err[0], err


@pytest.mark.parametrize("name, match", [("text.wav", "text.wav is not an audio file"),
                                         ("missing.wav", "missing.wav: no such file")])
def test_bad_audio(files, capsys, name, match):
    code = main(["simulate", "--model", str(files / "q4.ckpt"), str(files / name)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0]


def test_missing_default_model_says_how_to_make_it(files, capsys, monkeypatch):
    monkeypatch.setattr("sim.commands.transcribe.DEFAULT_MODEL", files / "models" / "x.ckpt")
    assert main(["simulate", str(files / "a.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`make model`" in err[0] and "--model" in err[0]


def test_design_without_the_vector_unit_is_refused(files, capsys, monkeypatch):
    monkeypatch.setattr("sim.build.DEFAULT_DESIGN", standin.design())
    assert main(_args(files, "--simulator", "amaranth")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "amaranth simulator cannot run RNN-T programs yet" in err[0]
    assert "start_arg" in err[0] and "CELL" in err[0] and "--simulator functional" in err[0]


class _FaultingBackend:
    """What a backend does with a design whose controller lacks an opcode: the driver's run
    raises (in process: DriverError; from a cocotb process: SimulationError naming it)."""

    def __init__(self, error):
        self.error = error

    def run(self, routine, *, waves=None):
        raise self.error


@pytest.mark.parametrize("error", [
    DriverError("run(pc=7): the accelerator stopped with fault set (unknown opcode) after 9 "
                "cycles"),
    type("SimulationError", (RuntimeError,), {"error_type": "DriverError"})(
        "host routine failed in verilator: DriverError: run(pc=7): the accelerator stopped "
        "with fault set (unknown opcode) after 9 cycles\n--- traceback ---\n..."),
])
def test_fault_on_an_unknown_opcode_is_refused(files, capsys, monkeypatch, error):
    monkeypatch.setattr(cmd, "rnnt_support", lambda *a, **k: None)
    monkeypatch.setattr("sim.backends.get_backend", lambda *a, **k: _FaultingBackend(error))
    assert main(_args(files, "--simulator", "verilator")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "cannot run RNN-T programs yet" in err[0] and "fault set" in err[0]


def test_simulator_build_failure_is_one_line(files, capsys, monkeypatch):
    from sim.build import BuildError
    error = BuildError("verilator not found on PATH\nmore detail")
    monkeypatch.setattr(cmd, "rnnt_support", lambda *a, **k: None)
    monkeypatch.setattr("sim.backends.get_backend", lambda *a, **k: _FaultingBackend(error))
    assert main(_args(files, "--simulator", "verilator")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zeroskip simulate: error: verilator: verilator not found on PATH"]


#: Counters the functional model knows exactly (sim/functional.py): a windowed run's sum of
#: both drivers' counters must equal a plain functional run's.
EXACT_COUNTERS = ("load_cycles", "dram_bytes", "wsram_reads", "act_reads", "macs", "skip_zero_w",
                  "skip_zero_a", "vector_cycles", "instr_end", "instr_load", "instr_matvec",
                  "instr_vadd", "instr_vmul", "instr_lut", "instr_cell", "instr_move")

_UNITS = {"s": 10**15, "ms": 10**12, "us": 10**9, "ns": 10**6, "ps": 10**3, "fs": 1}


def _vcd_span_fs(path) -> int:
    """The last timestamp of a VCD file, in femtoseconds."""
    import re
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("ascii", "replace")
        m = re.search(r"\$timescale\s+(\d+)\s*(s|ms|us|ns|ps|fs)\s+\$end", head)
        assert m, "no $timescale in the VCD header"
        f.seek(0, 2)
        f.seek(max(0, f.tell() - (1 << 16)))
        tail = f.read().decode("ascii", "replace").splitlines()
    last = [int(line[1:]) for line in tail if line.startswith("#") and line[1:].isdigit()]
    return last[-1] * int(m.group(1)) * _UNITS[m.group(2)]


@pytest.mark.parametrize("simulator", backend_params())
def test_waves_for_a_window_of_frames(files, capsys, tmp_path, simulator):
    """Frames 1..1 of 4 on the HDL simulator, the rest on the functional model: the results
    are a plain functional run's, the dump exists and spans only the load, init, the state
    copies and the window: fewer cycles than the whole utterance needs on the HDL."""
    common = ["--json", "--beam", "2", "--max-frames", "4"]
    assert main(_args(files, *common)) == 0
    plain = json.loads(capsys.readouterr().out)
    vcd = tmp_path / "w.vcd"
    assert main(_args(files, *common, "--simulator", simulator, "--waves", str(vcd),
                      "--wave-frames", "1:2")) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("text", "nbest", "bit_exact", "transcript_equals_int", "values_compared", "runs",
                "host_port_words", "frames"):
        assert r[key] == plain[key], key
    assert r["bit_exact"] is True and r["values_compared"] > 0
    for name in EXACT_COUNTERS:
        assert r["counters"][name] == plain["counters"][name], name
    assert r["counters"]["macs"] > 0 and r["counters"]["instr_cell"] > 0
    assert r["simulator"] == simulator and r["cycle_accurate"] is False
    assert r["wave_frames"] == r["hdl_frames"] == [1, 2]
    assert r["functional_frames"] == [[0, 1], [2, 4]]
    assert r["cycles"] == r["hdl_cycles"] + r["functional_cycles"]
    assert r["cycles"] == sum(r["cycles_per_program"].values())
    w = r["window"]
    assert w["windows"] == 1 and w["words_to_hdl"] == w["words_from_hdl"] == w["act_words"] > 0
    assert w["hdl_runs"] >= 2 and w["functional_runs"] >= 6       # >= encoder + joint a frame
    assert w["hdl_runs"] + w["functional_runs"] == sum(plain["runs"].values())
    # init ran on both: its cycles (LOADs and END) are exact in the functional model
    assert w["setup_runs"] == [{"pc": 0, "hdl_cycles": r["init_cycles"],
                                "functional_cycles": plain["init_cycles"]}]
    assert r["init_cycles"] == plain["init_cycles"]
    # the dump: its span is the HDL's clock cycles, and no more than the window needs
    assert vcd.exists() and vcd.with_suffix(".gtkw").exists()
    cfg = HardwareConfig.from_json((files / "fit.json").read_text())
    period_fs = (10**15 // cfg.clock_hz if simulator == "amaranth"
                 else 1000 * cocotb_period_ps(cfg))
    span = _vcd_span_fs(vcd) // period_fs
    assert abs(span - r["sim_cycles"]) <= 4, (span, r["sim_cycles"])
    least = r["init_cycles"] + r["hdl_cycles"] + 2 * w["act_words"]
    assert span >= least
    # at most: that, the instruction words (through the host port on cocotb), every host-port
    # word of the utterance and a few cycles per operation (reset, parking between them)
    from compiler.rnnt import compile_rnnt
    imem = len(compile_rnnt(cfg, IntRNNT.from_model(_model())).image.program_words)
    most = least + imem + sum(r["host_port_words"].values()) + 4 * (w["hdl_runs"] + 1) + 50
    assert span <= most, (span, most)
    whole = plain["init_cycles"] + plain["cycles"]      # the least a whole-utterance run needs
    assert most < whole and span < whole, (span, most, whole)
    # the text output says what ran where
    cmd._print(r)
    out = capsys.readouterr().out
    assert (f"simulator  {simulator} for frame 1 ({r['hdl_cycles']:,} cycles), the functional "
            f"model elsewhere ({r['functional_cycles']:,} cycles, an analytical estimate)") in out
    assert f"waves      {vcd} (frame 1, after the image load" in out


@pytest.mark.parametrize("as_json", [False, True])
def test_mismatch_exits_1_naming_where(files, capsys, monkeypatch, as_json):
    project = IntRNNT.project

    def wrong(self, name, x):                       # the reference's enc is off by one
        y = project(self, name, x)
        return y + (name == "enc_proj") * (torch.arange(len(y)) == 2)

    monkeypatch.setattr(IntRNNT, "project", wrong)
    code = main(_args(files, "--beam", "1", "--no-progress", *(["--json"] if as_json else [])))
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert code == 1
    assert len(err) == 1
    assert ("mismatch at frame 0, program 'encoder', written by pc" in err[0]
            and "tensor ENC[2] is" in err[0] and "in the integer reference" in err[0])
    if as_json:
        r = json.loads(cap.out)
        assert r["bit_exact"] is False
        m = r["mismatch"]
        assert (m["frame"], m["program"], m["tensor"], m["index"]) == (0, "encoder", "ENC", 2)
        assert m["expected"] == m["got"] + 1
    else:
        assert cap.out == ""


@pytest.mark.parametrize("text, want", [("3:5", (3, 5)), ("3:", (3, None)), ("0", (0, 1))])
def test_parse_frames(text, want):
    assert cmd.parse_frames(text) == want


def test_language_model_fusion_matches_transcribe_int(files, capsys, tmp_path):
    """With --lm the host's beam search adds the language model's scores; the hardware's
    outputs stay bit-exact and the n-best is `transcribe --int --lm`'s."""
    from model.lm import CharLM
    lm = tmp_path / "lm.json.gz"
    CharLM.train(["turn on the light", "call bob", "play some music"], order=3, weight=1.0,
                 bonus=0.5).save(lm)
    assert main(_args(files, "--json", "--beam", "3", "--lm", str(lm), "--lm-lexicon", "2")) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bit_exact"] is True and r["transcript_equals_int"] is True
    assert r["lm"] == {"order": 3, "weight": 1.0, "bonus": 0.5, "lexicon": 2.0}
    assert main(["transcribe", "--int", "--json", "--beam", "3", "--lm", str(lm), "--lm-lexicon",
                 "2", "--model", str(files / "q4.ckpt"), str(files / "a.wav")]) == 0
    assert json.loads(capsys.readouterr().out)["nbest"] == r["nbest"]
    assert main(_args(files, "--json", "--beam", "3")) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["lm"] is None and plain["nbest"] != r["nbest"]
