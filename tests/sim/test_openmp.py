"""Entry points make PyTorch's OpenMP threads sleep while they wait (``sim/__init__.py``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _probe(module: str, env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    # the package must set the variable before PyTorch is imported (libgomp reads it once, then)
    code = (f"import sys\nimport {module}\n"
            "assert 'torch' not in sys.modules, 'torch imported before the policy was set'\n"
            "import os, torch\nprint(os.environ.get('OMP_WAIT_POLICY'))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("module", ["sim.cli", "benchmarks"])
def test_threads_sleep_by_default(module):
    assert _probe(module, None) == "PASSIVE"


def test_user_choice_kept():
    assert _probe("sim.cli", "ACTIVE") == "ACTIVE"
