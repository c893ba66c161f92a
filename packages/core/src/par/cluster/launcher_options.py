"""Handing each of a cluster's launchers the options it declares.

``Cluster(n=4, engines="ssh", hosts=...)`` takes every launcher option as one keyword
argument; the controller launcher and the engine launcher each declare theirs
(:attr:`~par.launcher.Launcher.OPTIONS`). An option both declare goes to both, and one
neither declares is refused here, in one line that lists what the chosen launchers accept,
before any process starts. So is a work dir that does not exist where the engines run.
ipyparallel's names for the launchers and the controller's address are taken too.
"""

from __future__ import annotations

from typing import Any

from ..launcher import EngineSetLauncher, Launcher, check_work_dir

# ipyparallel's names for what par's Cluster takes under its own: the launchers (by
# name: par's launchers are plugins, not classes) and the controller launcher's options.
IPYPARALLEL_NAMES = {
    "engine_launcher_class": "engines",
    "controller_launcher_class": "controller",
    "controller_ip": "ip",
    "controller_location": "location",
}


def from_ipyparallel_names(
    engines: str, controller: str, options: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """``engines``, ``controller`` and the launcher options, with the ipyparallel names
    among ``options`` (:data:`IPYPARALLEL_NAMES`) taken as par's; a name given both ways,
    two different values, is refused."""
    options = dict(options)
    launchers = {"engines": engines, "controller": controller}
    for theirs, ours in IPYPARALLEL_NAMES.items():
        if theirs not in options:
            continue
        value = options.pop(theirs)
        if ours not in launchers:
            if ours in options and options[ours] != value:
                raise TypeError(f"{theirs} and {ours} are one option: give one")
            options[ours] = value
        elif not isinstance(value, str):
            raise TypeError(f"{theirs}: par takes a launcher's name ({ours}='mpi'), not {value!r}")
        elif launchers[ours] != "local" and launchers[ours].lower() != value.lower():
            raise TypeError(
                f"{theirs}={value!r} and {ours}={launchers[ours]!r} name two launchers: give one"
            )
        else:
            launchers[ours] = value
    return launchers["engines"], launchers["controller"], options


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
