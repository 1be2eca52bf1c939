"""``zeroskip`` end to end: the CLI on every simulator, its JSON, and its error paths."""

import json
import shutil

import pytest

from rtl.config import HardwareConfig
from sim.cli import main

FIELDS = {"bit_exact", "cycles", "ideal_cycles", "efficiency", "dense_cycles", "speedup_vs_dense",
          "load_cycles", "ideal_load_cycles", "simulator", "sim_wall_seconds",
          "sim_cycles_per_second", "counters"}


def run_json(capsys, *args):
    code = main(["matvec", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def simulators():
    sims = ["amaranth", "verilator"]
    sims.append(pytest.param("icarus", marks=pytest.mark.skipif(
        shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed; "
                                                 "`make test` installs it as root with apt")))
    return sims


@pytest.mark.parametrize("simulator", simulators())
def test_matvec_json_bit_exact(capsys, simulator):
    code, r = run_json(capsys, "--rows", "12", "--cols", "40", "--sparsity", "0.7",
                       "--w-bits", "8", "--hw", "tiny", "--simulator", simulator, "--seed", "5")
    assert code == 0
    assert FIELDS <= set(r)
    assert r["bit_exact"] is True and r["simulator"] == simulator
    assert r["efficiency"] == pytest.approx(r["ideal_cycles"] / r["cycles"])
    assert r["speedup_vs_dense"] == pytest.approx(r["dense_cycles"] / r["cycles"])
    assert r["counters"]["matvec"]["macs"] == r["nonzero_products"]
    assert 0 < r["efficiency"] <= 1


def test_simulators_agree_on_outputs_and_cycles(capsys):
    sims = ["amaranth", "verilator"] + (["icarus"] if shutil.which("iverilog") else [])
    reports = [run_json(capsys, "--rows", "9", "--cols", "30", "--sparsity", "0.5", "--hw", "tiny",
                        "--simulator", s, "--seed", "2")[1] for s in sims]
    for r in reports[1:]:
        for key in ("cycles", "dense_cycles", "load_cycles", "weight_load_cycles", "counters"):
            assert r[key] == reports[0][key], key


def test_w_bits_overrides_the_config(capsys):
    code, r = run_json(capsys, "--rows", "4", "--cols", "16", "--w-bits", "4", "--hw", "tiny",
                       "--simulator", "amaranth")
    assert code == 0 and r["config"]["weight_bits"] == 4


def test_text_output(capsys):
    assert main(["matvec", "--rows", "4", "--cols", "16", "--hw", "tiny", "--simulator",
                 "amaranth"]) == 0
    out = capsys.readouterr().out
    assert "BIT-EXACT" in out and "efficiency" in out


def test_layer_too_big_is_a_clear_error(capsys):
    code = main(["matvec", "--rows", "4096", "--cols", "4096", "--hw", "tiny", "--simulator", "amaranth"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "wsram_depth" in err


@pytest.mark.parametrize("args,match", [
    (["--sparsity", "1.5"], "outside"),
    (["--hw", "nosuch"], "neither a preset"),
    (["--w-bits", "3"], "invalid choice"),
    (["--simulator", "modelsim"], "invalid choice"),
    (["--rows", "0"], "must be positive"),
])
def test_bad_arguments(capsys, args, match):
    with pytest.raises(SystemExit) as e:
        main(["matvec", *args])
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_bad_config_file(capsys, tmp_path):
    p = tmp_path / "hw.json"
    p.write_text(json.dumps({**HardwareConfig.tiny().to_dict(), "k": 12}))
    with pytest.raises(SystemExit):
        main(["matvec", "--hw", str(p)])
    assert "HardwareConfig.k" in capsys.readouterr().err


def test_config_command(capsys, tmp_path):
    assert main(["config", "--hw", "tiny", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert HardwareConfig.from_dict(d) == HardwareConfig.tiny()
    assert main(["config", "--hw", "default"]) == 0
    assert HardwareConfig.default().digest in capsys.readouterr().out


def test_verilog_command(tmp_path):
    out = tmp_path / "t.v"
    assert main(["verilog", "--hw", "tiny", "-o", str(out)]) == 0
    assert "module zeroskip_top" in out.read_text()
