"""Handing each of a cluster's launchers the options it declares.

``Cluster(n=4, engines="ssh", hosts=...)`` takes every launcher option as one keyword
argument; the controller launcher and the engine launcher each declare theirs
(:attr:`~par.launcher.Launcher.OPTIONS`). An option both declare goes to both, and one
neither declares is refused here, in one line that lists what the chosen launchers accept,
before any process starts. So is a work dir that does not exist where the engines run.
"""

from __future__ import annotations

from typing import Any

from ..launcher import EngineSetLauncher, Launcher, check_work_dir


def split_options(options: dict[str, Any], *classes: type[Launcher]) -> list[dict[str, Any]]:
    """Give each launcher class the options it declares (in order); refuse the rest."""
    out: list[dict[str, Any]] = [{} for _ in classes]
    unknown = []
    for key, value in options.items():
        takers = [i for i, cls in enumerate(classes) if any(o.name == key for o in cls.OPTIONS)]
        if not takers:
            unknown.append(key)
        for i in takers:
            out[i][key] = value
    if unknown:
        known = sorted({o.name for cls in classes for o in cls.OPTIONS})
        raise TypeError(
            f"unknown option(s) {', '.join(sorted(unknown))}; "
            f"the chosen launchers accept: {', '.join(known) or 'none'}"
        )
    return out


def engine_work_dir(work_dir: str, cls: type[EngineSetLauncher]) -> str:
    """A work dir for engines of ``cls``: absolute if they run on this machine (and a
    ValueError naming it if it is no directory here), else as given (their hosts')."""
    return check_work_dir(work_dir) if work_dir and cls.WORK_DIR_HERE else work_dir
