"""Which address of this machine remote engines can reach, and loopback checks."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from par.launcher import LauncherError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolves_to_loopback(name: str) -> bool:
    """True if a host name resolves to a loopback address on this machine."""
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return any(is_loopback(str(addr[0])) for *_, addr in found)


def url_host(url: str) -> str:
    """The host part of ``tcp://HOST:PORT``."""
    return urlsplit(url).hostname or ""


def route_address(hostname: str, port: int) -> str:
    """This machine's address on the route to ``hostname`` (routing table only; sends nothing)."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(hostname, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror:
        raise LauncherError(
            f"unknown host {hostname!r}: check the name in --hosts or in ~/.ssh/config"
        )
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(addr)  # a UDP connect only consults the routing table
        except OSError as exc:
            raise LauncherError(f"no route from this machine to {hostname}: {exc.strerror}")
        return str(probe.getsockname()[0])
