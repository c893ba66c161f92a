"""The ``ssh`` launchers: engines, and optionally the controller, on other hosts over SSH."""

from __future__ import annotations

import json
import posixpath
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Self

from par import paths
from par.connection import load
from par.launcher import (
    ControllerLauncher,
    EngineSetLauncher,
    LaunchContext,
    Launcher,
    LauncherError,
    Option,
    check_module_names,
)
from par.plugins import launcher_class

from . import hosts as hostlib
from .address import is_loopback, resolves_to_loopback, route_address, url_host
from .hosts import Host
from .remote import Pool, Session

STATUS_INTERVAL = 1.0  # seconds between liveness checks over SSH (each runs the remote agent)
FORK_START_TIMEOUT = 180.0  # seconds the agent may take to start a fork server's engines

SSH_OPTIONS = (
    Option("hosts", str, "", "hosts as [user@]host[:engines],... e.g. alice@node1:4,node2"),
    Option(
        "hosts_file",
        str,
        "",
        "TOML hosts file: per-host user, port, key_file, python, engines, env",
    ),
    Option(
        "user", str, "", "SSH user for hosts that name none (default: ~/.ssh/config, then yours)"
    ),
    Option("port", int, 0, "SSH port for hosts that name none (0: ~/.ssh/config, then 22)"),
    Option("key_file", str, "", "private key file (default: the SSH agent and ~/.ssh/id_*)"),
    Option("remote_python", str, "python3", "Python on the hosts that has par installed"),
    Option(
        "remote_dir", str, ".par/remote", "directory on the hosts for connection files and logs"
    ),
    Option("ssh_config", str, "~/.ssh/config", "SSH config file whose Host aliases are honoured"),
    Option(
        "known_hosts",
        str,
        "",
        "known_hosts file (default: ~/.ssh/config's, else ~/.ssh/known_hosts)",
    ),
    Option("accept_new_hosts", bool, False, "accept and save host keys not yet in known_hosts"),
    Option("connect_timeout", float, 10.0, "seconds to wait for each SSH connection"),
)


def say(message: str) -> None:
    """Tell the user something they must know (which address, which risk) on stderr."""
    print(f"par ssh: {message}", file=sys.stderr, flush=True)


@dataclass
class Placement:
    """Processes this launcher started on one host, as the cluster file records them."""

    host: Host
    dir: str
    procs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"host": self.host.to_dict(), "dir": self.dir, "procs": self.procs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        """Inverse of :meth:`to_dict`."""
        return cls(Host.from_dict(data["host"]), data["dir"], list(data.get("procs", [])))

    @property
    def connection_file(self) -> str:
        """Where the cluster's connection file is put on the host."""
        return posixpath.join(self.dir, "connection.json")


class RemoteProcesses:
    """Stop, signal and watch processes started on several hosts; shared by both launchers."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.placements: list[Placement] = []
        self._alive = False
        self._checked = 0.0

    def start(
        self,
        session: Session,
        placement: Placement,
        commands: list[dict[str, Any]],
        require: str,
        timeout: float | None = None,
    ) -> None:
        """Start ``commands`` on the placement's host, recording them before anything can fail
        (the agent ends what it started if it fails)."""
        self.placements.append(placement)
        answer = session.agent({"op": "start", "commands": commands, "require": require}, timeout)
        placement.procs = answer["procs"]
        self._checked = 0.0

    def running(self) -> bool:
        """True while any process lives (checked over SSH at most once a second)."""
        if time.monotonic() - self._checked > STATUS_INTERVAL:
            self._alive = any(
                any(self.pool.get(p.host).agent({"op": "status", "procs": p.procs})["alive"])
                for p in self.placements
                if p.procs
            )
            self._checked = time.monotonic()
        return self._alive

    def signal(self, sig: int) -> None:
        """Signal every live process (engines, not the fork servers that forked them)."""
        for p in self.placements:
            procs = [q for q in p.procs if not q.get("server")]
            if procs:
                self.pool.get(p.host).agent({"op": "signal", "procs": procs, "signal": sig})

    def stop(self, timeout: float) -> None:
        """Stop every process on every host; say loudly what could not be stopped."""
        for p in self.placements:
            try:
                answer = self.pool.get(p.host).agent(
                    {
                        "op": "stop",
                        "procs": p.procs,
                        "timeout": timeout,
                        "remove": [p.connection_file],
                    },
                    timeout=timeout + 30,
                )
                left = answer["left"]
                reason = "they survived SIGKILL"
                if answer.get("swept"):
                    say(
                        f"ended {len(answer['swept'])} process(es) left behind on "
                        f"{p.host.label} (pids {', '.join(map(str, answer['swept']))})"
                    )
            except LauncherError as exc:
                left, reason = [q["pid"] for q in p.procs], str(exc)
            if left:
                say(
                    f"could not stop processes {left} on {p.host.label}: {reason}; "
                    "kill them there by hand"
                )
        self.placements = []
        self._alive, self._checked = False, 0.0
        self.pool.close()

    def output(self, lines: int, what: str, detail: str = "") -> str:
        """The last log lines of up to three processes, dead ones first."""
        shown = []
        for p in self.placements:
            try:
                session = self.pool.get(p.host)
                alive = (
                    session.agent({"op": "status", "procs": p.procs})["alive"] if p.procs else []
                )
            except LauncherError as exc:
                shown.append(f"[{what}s on {p.host.label}: output unavailable: {exc}]")
                continue
            ordered = sorted(zip(alive, p.procs, strict=True), key=lambda x: x[0])
            for live, proc in ordered[: 3 - len(shown)]:
                state = "running" if live else "exited"
                shown.append(
                    f"[{what} pid {proc['pid']} on {p.host.label} ({state}){detail}, "
                    f"log {proc['log']}]\n{session.tail(proc['log'], lines)}"
                )
        return "\n".join(shown)

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-ready form of the placements."""
        return [p.to_dict() for p in self.placements]

    def restore(self, data: list[dict[str, Any]]) -> None:
        """Inverse of :meth:`to_list`."""
        self.placements = [Placement.from_dict(d) for d in data]


def _local_controller_class() -> type[ControllerLauncher]:
    """The ``local`` controller launcher, which runs the controller on this machine."""
    cls = launcher_class("controller", "local")
    if not issubclass(cls, ControllerLauncher):
        raise LauncherError(
            "the 'local' controller launcher is broken: reinstall par-launcher-local"
        )
    return cls


def _remote_dir(session: Session, options: dict[str, Any], cluster_id: str) -> str:
    return posixpath.join(session.absolute(str(options["remote_dir"])), cluster_id)


class SSHEngineSetLauncher(EngineSetLauncher):
    """Engines on other hosts, started detached over SSH; ``par stop`` stops them from anywhere.

    By default each host's engines are forked from one fork server there
    (:mod:`par.engine.forkserver`), which imports par and the ``preload``
    modules once for all of them.
    """

    PLUGIN_NAME = "ssh"
    WORK_DIR_HERE = False  # a work dir is the hosts': each engine checks it there
    OPTIONS = (
        *SSH_OPTIONS,
        Option(
            "fork",
            bool,
            True,
            "fork each host's engines from one process there that imports par once "
            "(--no-fork: start each as a new interpreter)",
        ),
        Option(
            "preload",
            str,
            "",
            "modules each engine imports before it registers, e.g. numpy,pandas "
            "(with fork: imported once per host)",
        ),
    )
    n: int

    def __init__(self, context: LaunchContext, n: int = 1, **options: Any) -> None:
        super().__init__(context, n=n, **options)
        check_module_names(self.options["preload"])
        self.remote = RemoteProcesses(Pool(self.options))
        self.engine_url = ""

    def start(self) -> None:
        """Ship the connection file to each host and start its engines there, detached."""
        requested: int = self.n
        plan = hostlib.plan(
            hostlib.select(self.options["hosts"], self.options["hosts_file"]), requested
        )
        self.n = sum(count for _, count in plan)
        conn = self.context.connection_file
        info = load(conn)
        self.engine_url = info.engine_url
        data = conn.read_bytes()
        stamp = int(time.time() * 1000)
        for host, count in plan:
            session = self.remote.pool.get(host)
            self._check_reachable(session, host)
            placement = Placement(host, _remote_dir(session, self.options, self.context.cluster_id))
            session.put_private(placement.connection_file, data)
            if self.options["fork"]:
                command = self._fork_command(session, placement, stamp, count)
                self.remote.start(
                    session, placement, [command], "par.engine", timeout=FORK_START_TIMEOUT
                )
            else:
                commands = [self._command(session, placement, stamp, i) for i in range(count)]
                self.remote.start(session, placement, commands, require="par.engine")

    def _check_reachable(self, session: Session, host: Host) -> None:
        """Refuse a loopback controller for engines elsewhere: they could never register."""
        if is_loopback(session.peer_address()):
            return
        controller = url_host(self.engine_url)
        fix = (
            f"start the controller on an address {host.name} can reach, e.g. --ip "
            f"{session.local_address()} (this machine toward {host.name}) or --ip 0.0.0.0 "
            "--location ADDRESS, or use the ssh controller launcher (--launcher ssh), "
            "which picks one"
        )
        if is_loopback(controller):
            raise LauncherError(
                f"the controller listens on {controller} (loopback), which engines on "
                f"{host.label} cannot reach: {fix}"
            )
        if resolves_to_loopback(controller):
            say(
                f"WARNING: the controller is advertised as {controller!r}, a name that resolves to "
                f"loopback here; if it does on {host.label} too, its engines never register: {fix}"
            )

    def _command(
        self, session: Session, placement: Placement, stamp: int, i: int
    ) -> dict[str, Any]:
        log = posixpath.join(placement.dir, "logs", f"engine-{stamp}-{i}.log")
        python, connection_file = session.endpoint.python, placement.connection_file
        argv = [python, "-m", "par.engine", *self.engine_arguments(connection_file)]
        return {"argv": argv, "log": log, "env": self._env(placement, log=log)}

    def _fork_command(
        self, session: Session, placement: Placement, stamp: int, n: int
    ) -> dict[str, Any]:
        """The fork server that starts this host's ``n`` engines (the agent reads its pipe)."""
        logs = posixpath.join(placement.dir, "logs")
        argv = self.fork_server_command(
            n,
            posixpath.join(logs, f"engine-{stamp}"),
            python=session.endpoint.python,
            connection_file=placement.connection_file,
        )
        return {
            "argv": argv,
            "log": posixpath.join(logs, f"forkserver-{stamp}.log"),
            "env": self._env(placement),
            "fork": True,
            "n": n,
        }

    @staticmethod
    def _env(placement: Placement, **info: str) -> dict[str, str]:
        """The host's environment for engines, with what they register about themselves."""
        info = {"host": placement.host.name, "launcher": "ssh", **info}
        return {**placement.host.env, "PAR_ENGINE_INFO": json.dumps(info)}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every engine on every host (SIGTERM, then SIGKILL); remove the connection files."""
        self.remote.stop(timeout)

    def signal(self, sig: int) -> None:
        """Signal every engine on every host."""
        self.remote.signal(sig)

    def running(self) -> bool:
        """True while any engine of this set lives."""
        return self.remote.running()

    def output(self, lines: int = 20) -> str:
        """The engines' last log lines, fetched over SFTP, with the address they connect to."""
        return self.remote.output(lines, "engine", f", connecting to {self.engine_url}")

    def to_dict(self) -> dict[str, Any]:
        """Options, engine count, and the PIDs started on each host."""
        return {
            **super().to_dict(),
            "engine_url": self.engine_url,
            "placements": self.remote.to_list(),
        }

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Restore from :meth:`to_dict` output (``par stop`` from another terminal)."""
        self = super().from_dict(context, data)
        self.engine_url = data.get("engine_url", "")
        self.remote.restore(data.get("placements", []))
        return self


class SSHControllerLauncher(ControllerLauncher):
    """The controller for SSH engines: here, on an address they reach, or on ``controller_host``."""

    PLUGIN_NAME = "ssh"
    OPTIONS = (
        Option(
            "ip",
            str,
            "auto",
            "address the controller listens on; auto: the one the hosts can reach",
        ),
        Option("location", str, "", "host name engines and clients use to reach the controller"),
        Option(
            "controller_host",
            str,
            "",
            "run the controller on this [user@]host over SSH (default: here)",
        ),
        Option("start_timeout", float, 30.0, "seconds to wait for the controller to come up"),
        *SSH_OPTIONS,
    )

    def __init__(
        self, context: LaunchContext, controller_args: list[str] | None = None, **options: Any
    ) -> None:
        super().__init__(context, controller_args=controller_args, **options)
        self.local: Launcher | None = None  # the local launcher, when the controller runs here
        self.remote = RemoteProcesses(Pool(self.options))

    def start(self) -> None:
        """Start the controller; return once this machine has its connection file."""
        if self.options["controller_host"]:
            self._start_remote(hostlib.parse_spec(self.options["controller_host"])[0])
        else:
            self._start_local()

    def _start_local(self) -> None:
        ip, location = self.options["ip"], self.options["location"]
        if ip == "auto":
            ip, location = self._reachable_address()
        self.local = _local_controller_class()(
            self.context,
            controller_args=self.controller_args,
            ip=ip,
            location=location,
            start_timeout=self.options["start_timeout"],
        )
        assert self.local is not None
        self.local.start()

    def _reachable_address(self) -> tuple[str, str]:
        """The address to bind so every host reaches this machine: (ip, location)."""
        if not (self.options["hosts"] or self.options["hosts_file"]):
            say(
                "no --hosts given: the controller listens on 127.0.0.1, "
                "reachable from this machine only"
            )
            return "127.0.0.1", ""
        routes: dict[str, str] = {}
        for host in hostlib.select(self.options["hosts"], self.options["hosts_file"]):
            ep = hostlib.resolve(host, self.options)
            routes.setdefault(route_address(ep.hostname, ep.port), host.name)
        if len(routes) == 1:
            ((ip, first),) = routes.items()
            why = (
                "loopback: every host is this machine"
                if is_loopback(ip)
                else f"this machine's address toward {first}"
            )
            say(f"the controller listens on {ip} ({why}); choose another with --ip")
            return ip, ""
        first_ip = next(iter(routes))
        say(
            f"the hosts reach this machine by different addresses ({', '.join(routes)}): "
            "the controller "
            f"listens on all interfaces and advertises {first_ip}; if some host cannot reach it, "
            "pass --ip 0.0.0.0 --location NAME with a name every host resolves"
        )
        return "0.0.0.0", first_ip

    def _start_remote(self, host: Host) -> None:
        session = self.remote.pool.get(host)
        placement = Placement(
            host,
            posixpath.join(
                _remote_dir(session, self.options, self.context.cluster_id), "controller"
            ),
        )
        ip, location = self.options["ip"], self.options["location"]
        if ip == "auto":
            # listen everywhere there; advertise the address this machine reached it at
            ip, location = "0.0.0.0", location or session.peer_address()
        say(
            f"the controller runs on {host.label}, listening on {ip}, "
            f"advertised as {location or ip}"
        )
        argv = [
            session.endpoint.python,
            "-m",
            "par.controller",
            "--cluster-id",
            self.context.cluster_id,
            "--file",
            placement.connection_file,
            "--ip",
            ip,
            *(["--location", location] if location else []),
            *self.controller_args,
        ]
        log = posixpath.join(placement.dir, "controller.log")
        self.remote.start(
            session, placement, [{"argv": argv, "log": log}], require="par.controller"
        )
        deadline = time.monotonic() + float(self.options["start_timeout"])
        while (data := session.read(placement.connection_file)) is None:
            if time.monotonic() > deadline or not self.remote.running():
                state = (
                    "did not write its connection file in time"
                    if self.remote.running()
                    else "exited at start"
                )
                raise LauncherError(
                    f"the controller on {host.label} {state}; its output:\n{self.output()}"
                )
            time.sleep(0.1)
        paths.write_private_json(self.context.connection_file, json.loads(data))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the controller, here or on its host."""
        if self.local is not None:
            self.local.stop(timeout)
        self.remote.stop(timeout)

    def signal(self, sig: int) -> None:
        """Signal the controller."""
        if self.local is not None:
            self.local.signal(sig)
        self.remote.signal(sig)

    def running(self) -> bool:
        """True while the controller lives."""
        return self.local.running() if self.local is not None else self.remote.running()

    def output(self, lines: int = 20) -> str:
        """The controller's last log lines."""
        if self.local is not None:
            return self.local.output(lines)
        return self.remote.output(lines, "controller")

    def to_dict(self) -> dict[str, Any]:
        """Options and where the controller runs."""
        local = self.local.to_dict() if self.local is not None else None
        return {**super().to_dict(), "local": local, "placements": self.remote.to_list()}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Restore from :meth:`to_dict` output."""
        self = cls(context, **data.get("options", {}))
        if data.get("local") is not None:
            self.local = _local_controller_class().from_dict(context, data["local"])
        self.remote.restore(data.get("placements", []))
        return self
