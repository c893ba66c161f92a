"""A relay that cannot start says why, in one line, to its controller."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("kind", ["control", "direct"])
def test_a_relay_whose_folder_is_gone_answers_an_error_without_a_traceback(
    kind: str, tmp_path: Path
) -> None:
    """What happens when its controller gave up (a busy port) and the other relay, ending
    first, removed their folder while this one still started: its answer goes unread, and
    nothing may land on the controller's terminal (it shares its stderr)."""
    settings = {
        "ip": "127.0.0.1",
        "previous": {},
        "curve_secret": None,
        "max_message_bytes": 1 << 20,
        "folder": str(tmp_path / "gone"),
        "key": "00" * 32,
        "every": 0.5,
    }
    relay = subprocess.run(
        [sys.executable, "-m", "par.controller.relays", kind],
        input=json.dumps(settings) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert relay.returncode == 0
    assert relay.stderr == ""
    answer = json.loads(relay.stdout)
    assert "No such file or directory" in answer["error"]
    assert str(tmp_path / "gone") in answer["error"]
