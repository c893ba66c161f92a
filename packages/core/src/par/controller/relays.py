"""The controller's relays: child processes that hold engines' connections for the hub.

An engine keeps three connections to the controller (control, work, direct).
Were all three the hub's, 10,000 engines would need 30,000 file descriptors in
one process, past common limits (``ulimit -n``), and all their traffic would
share one core. So two kinds of connection end in a child process each, which
passes their traffic on to the hub over ``ipc://``::

    control  ROUTER (tcp, engines' control DEALERs) <-> DEALER (ipc) <-> the hub's
             control DEALER, as in the classic ROUTER-DEALER broker: the hub reads
             ``[engine identity, *message]`` as it read it from its own ROUTER, and
             sends the same to reach an engine. The relay answers heartbeats
             itself and tells the hub who beat in batches (heartbeats.py).
    direct   the direct device in C (mux.py) over its two ROUTERs (tcp, clients
             and engines), its copies pushed to the hub's PULL (ipc). Its clients'
             ROUTER also listens on ipc for the hub's syncs
             (``Controller.sync_copies``).

The hub keeps clients' connections and engines' work connections, whose
monitor tells when an engine drops: one descriptor an engine in each process.
Nothing changes on the wire: engines and clients connect to the public ports
as before, and a restored controller's relays bind the ports of the one it
replaces.

A relay is a fresh interpreter (``python -m par.controller.relays KIND``),
independent of the hub's ZeroMQ context and threads. It reads its settings as
one JSON line on stdin (the cluster's key among them: the control relay
authenticates engines' messages), binds, and answers one JSON line on stdout:
its public addresses, or the error that stopped it. Then it reads stdin to its
end, which comes when the controller closes it or dies in any way (the kernel
closes the pipe of a killed process): the relay then ends too, so none
outlives its controller. Ctrl-C in a terminal reaches the whole process group:
a relay ignores it and goes when its controller does. The other way round, a
relay that ends while its controller runs (killed, out of memory), or that says
nothing for ``--relay-timeout`` seconds (stopped, stuck), is started again by the
hub, on the same ports (``Controller._watch_relays``).

The ``ipc://`` endpoints live in a private folder (mode 0700) that only this
user can reach; the hub removes it when it closes, or the relays as they end.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

import zmq

from ..curve import make_server
from ..protocol import Session
from . import heartbeats, mux

START_TIMEOUT = 60.0  # seconds a relay may take to start (an interpreter on a busy host)
STOP_TIMEOUT = 5.0  # seconds a relay may take to pass on what it holds and end
CONTROL_LINGER = 1000  # ms a control relay keeps sending the hub's last messages (stop)
KINDS = ("control", "direct")
NUDGES = ["inproc://par-direct-clients", "inproc://par-direct-engines"]  # see mux.py
EPHEMERAL_PORTS = "/proc/sys/net/ipv4/ip_local_port_range"  # see listening_ports
MIN_LISTENING_PORTS = 1000
BIND_TRIES = 200  # ports tried there before any free one will do


def ipc_folder() -> str:
    """A new private folder for the relays' ``ipc://`` endpoints (short: a Unix socket's
    path has ~100 bytes)."""
    return tempfile.mkdtemp(prefix="par-")


def ipc_url(folder: str, name: str) -> str:
    """The ``ipc://`` address of endpoint ``name`` in ``folder``."""
    return f"ipc://{os.path.join(folder, name)}"


def router(ctx: zmq.Context, curve_secret: str | None, max_message_bytes: int) -> zmq.Socket:
    """A public ROUTER as the controller binds them: a reconnecting peer takes its
    identity back, nothing is dropped for a full queue, and no larger frame is read."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    # Anyone who can connect may send: ZeroMQ drops a peer that announces a larger frame
    # before reading it (large data comes in chunks on the direct path).
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    if curve_secret is not None:
        make_server(sock, curve_secret)
    return sock


def bind(sock: zmq.Socket, ip: str, previous: str | None = None) -> str:
    """Bind ``sock`` on ``ip``, on a free port or (restoring) the port of ``previous``;
    its ``tcp://`` address. OSError, in one line, if it cannot."""
    host = f"[{ip}]" if ":" in ip else ip
    if previous:  # restoring: the same port, so engines and clients find us again
        url = f"tcp://{host}:{int(previous.rsplit(':', 1)[1])}"
        try:
            sock.bind(url)
        except zmq.ZMQError as exc:
            reason = zmq.strerror(exc.errno or 0)  # without the address pyzmq adds
            raise OSError(
                f"cannot restore on {url}: {reason}; is the controller still running, or "
                "another program on that port?"
            ) from exc
        return url
    try:
        port = _bind_a_free_port(sock, f"tcp://{host}")
    except zmq.ZMQError as exc:
        raise OSError(
            f"cannot listen on {ip!r}: {zmq.strerror(exc.errno or 0)}; give --ip an address "
            "of this machine (0.0.0.0: all of them)"
        ) from exc
    return f"tcp://{host}:{port}"


def listening_ports() -> range | None:
    """The ports above the kernel's range for outgoing connections (Linux), or None where
    that range is unknown or leaves too few above it.

    A port is bound again later: a relay started again or a controller restored takes the
    one it had. Within that range any outgoing connection on the machine may hold it by
    then, even an engine reconnecting to it on loopback, which the kernel can give that
    very port as its source (a TCP self-connect: the engine talks to itself, and holds the
    port for good)."""
    try:
        with open(EPHEMERAL_PORTS) as f:
            highest = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    ports = range(highest + 1, 65536)
    return ports if len(ports) >= MIN_LISTENING_PORTS else None


def _bind_a_free_port(sock: zmq.Socket, url: str) -> int:
    """Bind ``url`` on a free port, outside the outgoing range where it has room; the port."""
    ports = listening_ports() or range(0)
    for port in random.sample(ports, min(len(ports), BIND_TRIES)):
        try:
            sock.bind(f"{url}:{port}")
            return port
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE:
                raise
    sock.bind(f"{url}:*")  # none free up there: any port will do
    return int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])


class Relay:
    """The controller's handle on one relay process (see the module's docstring)."""

    def __init__(self, kind: str, settings: dict[str, Any]) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "par.controller.relays", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(settings).encode() + b"\n")
        self.proc.stdin.flush()

    def urls(self) -> dict[str, str]:
        """The public addresses the relay bound (waits for it to say). OSError, naming
        why, if it could not."""
        assert self.proc.stdout is not None
        reader = threading.Timer(START_TIMEOUT, self.proc.kill)  # a relay that hangs
        reader.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            reader.cancel()
        answer: dict[str, Any] = (
            json.loads(line) if line.strip() else {"error": "it exited at start"}
        )
        if "error" in answer:
            self.close()
            raise OSError(f"the controller's {self.kind} relay failed: {answer['error']}")
        return dict(answer["urls"])

    def ended(self) -> str | None:
        """How the relay's process ended (``killed by SIGKILL``, ``exited with status 1``),
        or None while it runs."""
        code = self.proc.poll()
        if code is None:
            return None
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def close(self) -> None:
        """Tell the relay to end, and wait for it to (killing it if it does not)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:  # it ended already, with our last words unread
            pass
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start(settings: dict[str, Any]) -> dict[str, Relay]:
    """Start both relays at once (their interpreters start side by side)."""
    return {kind: Relay(kind, settings) for kind in KINDS}


def remove_folder(folder: str) -> None:
    """Remove the relays' ipc folder (once they closed their endpoints)."""
    shutil.rmtree(folder, ignore_errors=True)


# ---- in the relay's process ---------------------------------------------------------------


def _control(ctx: zmq.Context, s: dict[str, Any]) -> tuple[list[zmq.Socket], Any]:
    engines = router(ctx, s["curve_secret"], s["max_message_bytes"])
    engines.setsockopt(zmq.LINGER, CONTROL_LINGER)  # the hub's last words (stop) go out
    hub = ctx.socket(zmq.DEALER)
    hub.setsockopt(zmq.SNDHWM, 0)
    hub.setsockopt(zmq.RCVHWM, 0)
    hub.setsockopt(zmq.LINGER, 0)
    socks = [engines, hub]
    s["urls"] = {"control": bind(engines, s["ip"], s["previous"].get("control_url"))}
    hub.bind(ipc_url(s["folder"], "control"))
    session = Session(bytes.fromhex(s["key"]))
    return socks, lambda: heartbeats.run(engines, hub, session, s["every"])


def _direct(ctx: zmq.Context, s: dict[str, Any]) -> tuple[list[zmq.Socket], Any]:
    clients = router(ctx, s["curve_secret"], s["max_message_bytes"])
    engines = router(ctx, s["curve_secret"], s["max_message_bytes"])
    copies = ctx.socket(zmq.PUSH)
    copies.setsockopt(zmq.SNDHWM, 0)  # the hub reads every copy: none dropped
    copies.setsockopt(zmq.LINGER, 0)
    socks = [clients, engines, copies]
    s["urls"] = {
        "direct": bind(clients, s["ip"], s["previous"].get("direct_url")),
        "engine_direct": bind(engines, s["ip"], s["previous"].get("engine_direct_url")),
    }
    for sock, url in zip((clients, engines), NUDGES, strict=True):
        sock.bind(url)  # for the nudges (see mux.py)
    clients.bind(ipc_url(s["folder"], "direct-clients"))  # for the hub's syncs
    copies.connect(ipc_url(s["folder"], "copies"))  # the hub's PULL, bound before we start
    return socks, lambda: mux.run(clients, engines, copies)


def _say(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def _wait_for_the_end(ctx: zmq.Context, kind: str, nudge_every: float) -> None:
    """Read stdin to its end (the controller closed it, or died), then end the device;
    meanwhile nudge the direct device every ``nudge_every`` seconds."""
    socks = mux.nudgers(ctx, NUDGES) if kind == "direct" else []
    every = nudge_every if socks else None  # the control relay has nothing to do meanwhile
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([stdin], [], [], every)
        if readable and not os.read(stdin, 4096):
            break
        mux.nudge(socks)
    for sock in socks:
        sock.close()
    ctx.term()  # the device returns; its sockets close, the control relay's after lingering


def main(kind: str) -> None:
    """Run one relay until its controller closes stdin or dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle
    settings = json.loads(sys.stdin.readline())
    ctx = zmq.Context()
    try:
        socks, device = (_control if kind == "control" else _direct)(ctx, settings)
    except (OSError, zmq.ZMQError) as exc:  # a busy port, or the ipc folder gone
        _say({"error": str(exc)})
        ctx.destroy(linger=0)
        return
    _say({"urls": settings["urls"]})
    ending = (ctx, kind, settings["nudge_every"])
    threading.Thread(target=_wait_for_the_end, args=ending, name="par-relay-end").start()
    try:
        device()
    except zmq.ContextTerminated:
        pass
    finally:
        for sock in socks:
            sock.close()
    remove_folder(settings["folder"])  # the hub does too, unless it died first


if __name__ == "__main__":
    main(sys.argv[1])
