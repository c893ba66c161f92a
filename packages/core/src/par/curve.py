"""CurveZMQ encryption of a cluster's connections.

The controller holds a Curve key pair and publishes only its public key, in
the (owner-only) connection file. Engines and clients make a throwaway key
pair each and encrypt every connection to the controller with it. Curve
here gives confidentiality and server authentication; who may *act* on the
cluster is still decided by the HMAC key every message is signed with.
"""

from __future__ import annotations

import ipaddress

import zmq

MODES = ("auto", "on", "off")


def is_loopback(ip: str) -> bool:
    """True for addresses only this machine can reach."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def wanted(mode: str, ip: str) -> bool:
    """Whether to encrypt: 'auto' encrypts whenever the controller listens beyond loopback."""
    if mode not in MODES:
        raise ValueError(f"curve mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        return not is_loopback(ip)
    return mode == "on"


def server_keypair() -> tuple[str, str]:
    """A new (public, secret) key pair, Z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def make_server(sock: zmq.Socket, secret: str) -> None:
    """Make a bound socket accept only Curve-encrypted connections."""
    sock.curve_server = True
    sock.curve_secretkey = secret.encode()


def make_client(sock: zmq.Socket, serverkey: str) -> None:
    """Encrypt a connecting socket to a server with the given public key (before connect)."""
    public, secret = zmq.curve_keypair()
    sock.curve_serverkey = serverkey.encode()
    sock.curve_publickey = public
    sock.curve_secretkey = secret
