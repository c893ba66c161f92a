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
