"""``zeroskip train`` as a process: SIGTERM (how a background run is stopped) saves the state."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from model.checkpoint import load
from tests.model.test_train import _corpus

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_stops_between_steps_and_saves_the_state(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    out = tmp_path / "m.ckpt"
    cmd = [sys.executable, "-c", "import sys; from sim.cli import main; sys.exit(main())",
           "train", "--corpus", str(corpus), "--out", str(out), "--preset", "tiny",
           "--epochs", "100000", "--batch-size", "2", "--lr", "5e-3", "--threads", "1",
           "--no-progress"]
    p = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        seen, deadline = [], time.monotonic() + 300
        while time.monotonic() < deadline:       # the loop is running once an epoch has ended
            line = p.stderr.readline()
            assert line, f"zeroskip train ended early:\n{''.join(seen)}"
            seen.append(line)
            if line.startswith("epoch 2/"):
                break
        p.send_signal(signal.SIGTERM)
        rest = p.stderr.read()
        code = p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    err = "".join(seen) + rest
    assert code == 128 + signal.SIGTERM, err
    assert "SIGTERM: stopping before the next step" in rest
    assert f"interrupted; rerun the same command to resume from {out}.last" in rest
    state = load(Path(f"{out}.last"), train_state=True).train_state
    assert state["step"] >= 4 and state["epoch"] >= 2      # 2 steps an epoch: the epochs ran
    assert "Traceback" not in err
