"""Build check of the docs' pages: every link between pages resolves and every
``python`` code block runs (the blocks of a page run in order, in one namespace).

A block fenced with a title (```` ```python title="conftest.py" ````) is an
excerpt of a file, shown and not run. The pages of the MPI, SSH and Slurm
launchers are not run either: their blocks need MPI hosts, SSH hosts or a
Slurm cluster (tests/launcher_* make the same calls against real ones).
``nox -s docs`` runs this after building the site with ``mkdocs build --strict``.

Run with ``python docs/build.py [PAGE.md ...]`` (paths relative to docs/).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

DOCS = Path(__file__).parent
NOT_RUN = {"mpi.md", "ssh.md", "slurm.md"}
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose target does not exist."""
    targets = (m.group(1) for m in LINK.finditer(page.read_text()))
    return [t for t in targets if "://" not in t and not (page.parent / t).exists()]


def run_blocks(page: Path) -> str | None:
    """Run the page's python blocks; the error text of the first that fails, or None."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    for i, match in enumerate(BLOCK.finditer(page.read_text()), 1):
        try:
            exec(compile(match.group(1), f"{page.name}[block {i}]", "exec"), namespace)
        except BaseException:
            return traceback.format_exc()
    return None


def stop_leftovers() -> None:
    """Stop clusters a page left running (a failing block skips the page's own stop)."""
    from par import Cluster, paths

    for cluster_id in paths.list_cluster_ids():
        try:
            Cluster.from_file(cluster_id).stop_cluster_sync()
        except Exception as exc:
            print(f"     could not stop cluster {cluster_id}: {exc}")


def main(names: list[str]) -> int:
    """Check the named pages (all by default); 0 if all pass."""
    os.environ.setdefault("PAR_HOME", tempfile.mkdtemp(prefix="par-docs-"))
    os.environ.setdefault("PAR_NONINTERACTIVE", "1")
    pages = [DOCS / n for n in names] if names else sorted(DOCS.rglob("*.md"))
    failed = 0
    for page in pages:
        start = time.monotonic()
        problems = [f"broken link: {link}" for link in broken_links(page)]
        if page.name not in NOT_RUN:
            try:
                error = run_blocks(page)
            finally:
                stop_leftovers()
            if error:
                problems.append(error)
        status = "FAIL" if problems else "ok"
        print(f"{status:4} {page.relative_to(DOCS)} ({time.monotonic() - start:.1f}s)")
        for problem in problems:
            print("     " + problem.replace("\n", "\n     "))
        failed += bool(problems)
    print(f"{len(pages) - failed} of {len(pages)} pages pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
