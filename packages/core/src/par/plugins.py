"""Finding launcher plugins and resolving launcher names to classes.

Plugins come from the ``par`` entry-point group. A launcher name is looked
up in entry points *named* after it first, so ``--launcher local`` imports
only the local plugin; anything else loads every allowed plugin. A plugin
that fails to import is reported once and skipped; two plugins offering one
name are refused with an error naming both.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, overload

import pluggy

from . import hookspecs
from .launcher import ControllerLauncher, EngineSetLauncher, Launcher

log = logging.getLogger("par.plugins")
GROUP = "par"
# The launchers par ships and their distributions, to say what to install when one is missing.
SHIPPED = {
    "local": "par-launcher-local",
    "ssh": "par-launcher-ssh",
    "mpi": "par-launcher-mpi",
    "slurm": "par-launcher-slurm",
}


class PluginError(Exception):
    """A launcher name is unknown or ambiguous, or a plugin is broken."""


@dataclass
class LauncherInfo:
    """Where a launcher class came from."""

    cls: type[Launcher]
    plugin: str
    package: str
    version: str


class LauncherRegistry:
    """The registrar handed to ``par_register_launchers``: call it with a class.

    A plugin's hook annotates its argument with it::

        from par.plugins import LauncherRegistry

        @hookimpl
        def par_register_launchers(register: LauncherRegistry) -> None:
            register(MineEngineSetLauncher)
    """

    def __init__(self) -> None:
        self.controllers: dict[str, LauncherInfo] = {}
        self.engines: dict[str, LauncherInfo] = {}
        self._current: tuple[str, str, str] = ("?", "?", "?")  # plugin, package, version

    @contextlib.contextmanager
    def from_plugin(self, plugin: str, package: str, version: str) -> Iterator[LauncherRegistry]:
        """Within the block, classes registered are said to come from this plugin."""
        self._current = (plugin, package, version)
        try:
            yield self
        finally:
            self._current = ("?", "?", "?")

    def __call__(self, cls: type[Launcher]) -> None:
        """Make the launcher class ``cls`` available under its ``PLUGIN_NAME``."""
        name = getattr(cls, "PLUGIN_NAME", "")
        if not name:
            raise PluginError(f"{cls.__qualname__} has no PLUGIN_NAME")
        if issubclass(cls, ControllerLauncher):
            table = self.controllers
        elif issubclass(cls, EngineSetLauncher):
            table = self.engines
        else:
            raise PluginError(
                f"{cls.__qualname__} is neither a ControllerLauncher nor an EngineSetLauncher"
            )
        plugin, package, version = self._current
        if name in table and table[name].cls is not cls:
            raise PluginError(
                f"two plugins provide the {cls.KIND} launcher {name!r}: "
                f"{table[name].plugin} ({table[name].package}) and {plugin} ({package}); "
                "uninstall one, or limit plugins with PAR_LOAD_PLUGINS"
            )
        table[name] = LauncherInfo(cls, plugin, package, version)


def _allowed(ep: EntryPoint) -> bool:
    allow = os.environ.get("PAR_LOAD_PLUGINS")
    if allow is None:
        return True
    return ep.name in {n.strip() for n in allow.split(",") if n.strip()}


class Plugins:
    """The plugin manager of this process."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.registry = LauncherRegistry()
        self.errors: dict[str, str] = {}
        self._loaded: set[str] = set()
        self._all_loaded = False

    def _entry_points(self) -> list[EntryPoint]:
        return [ep for ep in entry_points(group=GROUP) if _allowed(ep)]

    def _load(self, ep: EntryPoint) -> None:
        if ep.name in self._loaded:
            return
        self._loaded.add(ep.name)
        dist = ep.dist
        package = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        try:
            module = ep.load()
            self.pm.register(module, name=ep.name)  # checks its hooks against hookspecs
            hook = getattr(module, "par_register_launchers", None)
            if hook is None:
                raise PluginError("it implements no par hook (par_register_launchers)")
            with self.registry.from_plugin(ep.name, package, version) as register:
                hook(register=register)
        except PluginError as exc:
            if "two plugins" in str(exc):
                raise
            self._broken(ep.name, package, exc)
        except Exception as exc:
            self._broken(ep.name, package, exc)

    def _broken(self, name: str, package: str, exc: Exception) -> None:
        self.errors[name] = f"{type(exc).__name__}: {exc}"
        log.warning("par plugin %r (%s) is broken and was skipped: %s", name, package, exc)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)

    def load_all(self) -> None:
        """Load every allowed plugin."""
        if self._all_loaded:
            return
        for ep in self._entry_points():
            self._load(ep)
        self._all_loaded = True

    def find(self, kind: str, name: str) -> type[Launcher]:
        """The launcher class of a kind ('controller' or 'engines') and name."""
        table = self.registry.controllers if kind == "controller" else self.registry.engines
        if name not in table:
            for ep in self._entry_points():
                if ep.name.casefold() == name.casefold():
                    self._load(ep)
        if name not in table:
            self.load_all()
        # 'MPI' or 'Local', as ipyparallel accepts them
        name = next((known for known in table if known.casefold() == name.casefold()), name)
        if name not in table:
            installed = ", ".join(sorted(table)) or "none"
            raise PluginError(
                f"unknown {'controller' if kind == 'controller' else 'engine'} launcher {name!r}"
                f"{self._missing_hint(name)}; installed: {installed}"
            )
        return table[name].cls

    def _missing_hint(self, name: str) -> str:
        """Why the launcher ``name`` is not there, when par can tell."""
        if name in self.errors:
            return f" (the plugin {name!r} failed to load: {self.errors[name]})"
        if any(ep.name.casefold() == name.casefold() for ep in entry_points(group=GROUP)):
            return f" (PAR_LOAD_PLUGINS={os.environ.get('PAR_LOAD_PLUGINS')!r} leaves it out)"
        package = SHIPPED.get(name.casefold())
        if package:
            return (
                f" (it comes in the {package} package: `pip install {package}`, "
                "or `pip install par-cluster` for par with its local launcher)"
            )
        return ""

    def launchers(self) -> list[tuple[str, LauncherInfo]]:
        """Every (kind, info) of every allowed plugin, for ``par launchers``."""
        self.load_all()
        out = [("controller", i) for i in self.registry.controllers.values()]
        out += [("engines", i) for i in self.registry.engines.values()]
        return sorted(out, key=lambda x: (x[1].cls.PLUGIN_NAME, x[0]))


_plugins: Plugins | None = None


def plugins() -> Plugins:
    """The process-wide plugin manager (created on first use)."""
    global _plugins
    if _plugins is None:
        _plugins = Plugins()
    return _plugins


def reset() -> None:
    """Forget loaded plugins (tests use this after changing PAR_LOAD_PLUGINS)."""
    global _plugins
    _plugins = None


def register_launcher(cls: type[Launcher]) -> None:
    """Make a launcher class usable in this process only, without a plugin package.

    For trying a launcher in a notebook or a page of the docs: other processes
    (``par stop``, ``par list``) cannot see it, so a launcher others use comes in
    a package with an entry point.
    """
    with plugins().registry.from_plugin("-", "(this process)", "-") as register:
        register(cls)


def announce(event: dict[str, Any]) -> None:
    """Hand a launcher's lifecycle event to every plugin's ``par_launcher_event``."""
    plugins().pm.hook.par_launcher_event(event=event)


@overload
def launcher_class(kind: Literal["controller"], name: str) -> type[ControllerLauncher]: ...
@overload
def launcher_class(kind: Literal["engines"], name: str) -> type[EngineSetLauncher]: ...
@overload
def launcher_class(kind: str, name: str) -> type[Launcher]: ...
def launcher_class(kind: str, name: str) -> type[Launcher]:
    """Resolve a launcher name to its class (of a kind: 'controller' or 'engines')."""
    return plugins().find(kind, name)


def describe(cls: type[Launcher]) -> dict[str, Any]:
    """Name, kind and options of a launcher class."""
    return {
        "name": cls.PLUGIN_NAME,
        "kind": cls.KIND,
        "options": [(o.flag, o.type.__name__, o.default, o.help) for o in cls.OPTIONS],
    }
