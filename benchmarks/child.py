"""Run one workload against one peer in this process: ``child.py PEER WORKLOAD CONFIG_JSON``.

:mod:`run` starts one of these per (peer, workload) so that a peer that
crashes or hangs takes only its own figures with it. Engines inherit this
process's ``PYTHONPATH``, extended so that they import :mod:`tasks` as
the client does. Each figure is printed
on its own line as ``@@ {"key": ..., "value": ...}`` the moment it is known.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from workloads import FLOORS, WORKLOADS, Config

MARK = "@@ "


def emit(key: str, value: Any) -> None:
    """Report one figure to the parent (a value, or ``{"na": reason}``)."""
    print(MARK + json.dumps({"key": key, "value": value}), flush=True)


def main(argv: list[str]) -> int:
    """Run the workload named in ``argv``; exit non-zero (with a traceback) if it fails."""
    peer, workload, raw = argv
    cfg = Config(**json.loads(raw))
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    logging.basicConfig(level=logging.ERROR)
    (FLOORS if peer == "floor" else WORKLOADS)[workload](peer, cfg, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
