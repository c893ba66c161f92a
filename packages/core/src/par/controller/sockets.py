"""The controller's sockets, all bound by it, and the addresses it publishes.

Five ROUTERs::

    client  <- clients' request DEALERs; -> clients' reply DEALERs
    engine  <-> engines' work DEALERs (requests out, replies in)
    control <-> engines' control DEALERs (registration, heartbeats,
                abort / signal / stop, streamed output)
    direct, engine_direct: the direct device's (see mux.py): clients'
                direct requests to engines and the replies back, routed
                in C; the hub reads copies

plus a monitor of the engine socket, which says when an engine's connection
drops. A restored controller binds the ports of the one it replaces, so that
engines and clients reconnect by themselves.
"""

from __future__ import annotations

import zmq

from ..curve import make_server
from .mux import DirectDevice

NAMES = ("client", "engine", "control", "direct", "engine_direct")


class Sockets:
    """The controller's bound sockets and the direct device between two of them."""

    def __init__(
        self,
        ip: str,
        curve_secret: str | None,
        previous: dict[str, str],
        max_message_bytes: int,
        client_hwm: int,
    ) -> None:
        self.ctx = zmq.Context()
        self.curve_secret = curve_secret
        self.max_message_bytes = max_message_bytes
        routers = {name: self._router() for name in NAMES}
        self.client = routers["client"]  # clients' requests in, everything they get out
        # A client that does not read fills a bounded queue, and a full one is an error at
        # once rather than a silent drop (see delivery.py).
        self.client.setsockopt(zmq.SNDHWM, client_hwm)
        self.client.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.engine = routers["engine"]  # engines' work: requests out, replies in
        self.control = routers["control"]  # engines' control connections
        self.monitor = self.engine.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.urls = {
            name: _bind(sock, ip, previous.get(f"{name}_url")) for name, sock in routers.items()
        }
        self.device = DirectDevice(self.ctx, routers["direct"], routers["engine_direct"])

    def _router(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        # Anyone who can connect may send: ZeroMQ drops a peer that announces a larger frame
        # before reading it (large data comes in chunks on the direct path).
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        if self.curve_secret is not None:
            make_server(sock, self.curve_secret)
        return sock

    def close(self) -> None:
        """Close every socket: this thread's, then the context, which ends the device's
        thread (it closes its own sockets)."""
        if not self.device.is_alive():
            self.ctx.destroy(linger=200)
            return
        self.engine.disable_monitor()
        for sock in (self.client, self.engine, self.control, self.monitor):
            sock.close(linger=200)
        self.device.close_hub_side()
        self.ctx.term()
        self.device.join()


def _bind(sock: zmq.Socket, ip: str, previous: str | None = None) -> str:
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
        port = sock.bind_to_random_port(f"tcp://{host}")
    except zmq.ZMQError as exc:
        raise OSError(
            f"cannot listen on {ip!r}: {zmq.strerror(exc.errno or 0)}; give --ip an address "
            "of this machine (0.0.0.0: all of them)"
        ) from exc
    return f"tcp://{host}:{port}"
