"""Every script in examples/ runs to completion against a cluster it starts itself."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
SCRIPTS = [
    "monte_carlo_pi.py",
    "parameter_sweep_imap.py",
    "dag_dependencies.py",
    "streaming_output.py",
    "joblib_example.py",
    "publish_progress.py",
]
NEEDS = {"joblib_example.py": "joblib"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script: str) -> None:
    module = NEEDS.get(script)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{script} needs {module}")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), "an example says what it did"
