"""A damaged connection file, an address where a file belongs, or a name where an engine
id belongs: each gets one line naming the wrong value and what to do, at once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import par
import pytest
from par import paths
from par.errors import ClusterError


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("key", "zz", "its key is not hexadecimal (character 'z' at 0)"),
        ("key", "abc", "its key has 3 hexadecimal digits"),
        ("client_url", "tcp://1.2.3", "its client_url 'tcp://1.2.3' is not an address"),
        ("direct_url", "tcp://127.0.0.1:99999", "its direct_url 'tcp://127.0.0.1:99999'"),
        ("signature_scheme", "hmac-md5", "its signature_scheme 'hmac-md5' is not one par"),
        ("curve_serverkey", "abc", "its curve_serverkey is not a CurveZMQ public key"),
    ],
)
def test_a_damaged_connection_file_is_refused_in_one_line(
    rc: par.Client, tmp_path: Path, field: str, value: str, said: str
) -> None:
    good = json.loads(paths.connection_file(rc._info.cluster_id).read_text())
    damaged = tmp_path / "connection.json"
    damaged.write_text(json.dumps({**good, field: value}))
    with pytest.raises(ClusterError) as err:
        par.Client(damaged, timeout=5)
    message = str(err.value)
    assert "\n" not in message
    assert f"connection file {damaged} is not usable: {said}" in message
    assert "use the connection file the controller wrote" in message
    assert good["key"] not in message  # the secret stays out of logs


def test_an_address_instead_of_a_connection_file_is_refused_at_once() -> None:
    start = time.monotonic()
    with pytest.raises(ClusterError, match=r"^'tcp://1\.2\.3' is an address, not a connection"):
        par.Client("tcp://1.2.3", timeout=10)
    assert time.monotonic() - start < 5  # it does not wait for a file by that name


@pytest.mark.parametrize("key", ["a", "1", 1.5, ["a"], [0, "b"]])
def test_a_name_that_is_not_an_engine_id_is_refused(rc: par.Client, key: object) -> None:
    with pytest.raises(TypeError, match="engines are named by integer ids") as err:
        rc[key]  # type: ignore[index]
    assert repr(key) in str(err.value)
    if isinstance(key, str):
        assert f"rc[:][{key!r}]" in str(err.value)


def test_a_client_with_another_key_is_told_at_once_that_its_key_was_refused(
    rc: par.Client, tmp_path: Path
) -> None:
    good = json.loads(paths.connection_file(rc._info.cluster_id).read_text())
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({**good, "key": "ab" * 32}))
    start = time.monotonic()
    with pytest.raises(ClusterError) as err:
        par.Client(stale, timeout=10)
    assert time.monotonic() - start < 5  # not after the 10 s timeout
    assert str(err.value) == (
        f"the controller at {good['client_url']} refused this client's messages: the key in "
        f"connection file {stale} is not the cluster's; use the connection file the controller "
        "wrote (`par list` shows the running clusters)"
    )
    assert rc[:].apply_sync(abs, -2) == [2] * len(rc)


CONNECT = """
import sys, time, par
start = time.monotonic()
try:
    par.Client(sys.argv[1], timeout=5)
except par.ClusterError as exc:
    print(f"{time.monotonic() - start:.1f} {exc}")
"""


@pytest.mark.parametrize(
    ("encrypted", "serverkey", "said"),
    [
        (True, "", "it encrypts (CurveZMQ), and connection file {} has no curve_serverkey"),
        (True, "other", "it does not encrypt, or not with the CurveZMQ key that is the"),
        (False, "other", "it does not encrypt, or not with the CurveZMQ key that is the"),
    ],
)
def test_a_client_whose_connection_the_controller_refuses_fails_at_once(
    rc: par.Client, tmp_path: Path, encrypted: bool, serverkey: str, said: str
) -> None:
    """Curve on one side only, or another Curve key: the handshake fails, and the client says
    so at once instead of hanging (its I/O thread used to block for good in a send)."""
    import subprocess
    import sys

    import zmq

    if serverkey == "other":
        serverkey = zmq.curve_keypair()[0].decode()
    cluster = par.Cluster(n=0, controller_args=["--curve", "on"]) if encrypted else None
    try:
        if cluster is not None:
            cluster.start_controller_sync()
            good = json.loads(paths.connection_file(cluster.cluster_id).read_text())
        else:
            good = json.loads(paths.connection_file(rc._info.cluster_id).read_text())
        conn = tmp_path / "connection.json"
        conn.write_text(json.dumps({**good, "curve_serverkey": serverkey}))
        out = subprocess.run(
            [sys.executable, "-c", CONNECT, str(conn)], capture_output=True, text=True, timeout=60
        )
    finally:
        if cluster is not None:
            cluster.stop_cluster_sync()
    took, message = out.stdout.strip().split(" ", 1)
    assert float(took) < 5
    assert message.startswith(f"the controller at {good['client_url']} refused the connection: ")
    assert said.format(conn) in message
    assert message.endswith(
        "use the connection file the controller wrote (`par list` shows the running clusters)"
    )
