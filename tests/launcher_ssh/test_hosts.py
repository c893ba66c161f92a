"""Host specs, hosts files, engine counts and ~/.ssh/config aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import par
import pytest
from par.launcher import LauncherError
from par_launcher_ssh import hosts
from par_launcher_ssh.hosts import Host

from .conftest import Keys, Sshd


def test_spec_names_user_host_and_engine_count() -> None:
    assert hosts.parse_spec("alice@node1:4, node2:8,[fd00::2]:1,node3") == [
        Host("node1", user="alice", engines=4),
        Host("node2", engines=8),
        Host("fd00::2", engines=1),
        Host("node3"),
    ]
    with pytest.raises(LauncherError, match=r"\[user@\]host\[:engines\]"):
        hosts.parse_spec("node1:four")


def test_hosts_file_with_defaults_and_per_host_settings(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(
        '[defaults]\npython = "/opt/py/bin/python"\nenv = { A = "1" }\n'
        '[[host]]\nname = "node1"\nuser = "alice"\nport = 2222\nengines = 4\nenv = { B = 2 }\n'
        '[[host]]\nname = "node2"\nkey_file = "~/k"\n'
    )
    node1, node2 = hosts.load_file(path)
    assert node1 == Host("node1", "alice", 2222, "", "/opt/py/bin/python", 4, {"A": "1", "B": "2"})
    assert node2.key_file == "~/k" and node2.python == "/opt/py/bin/python"
    path.write_text('[[host]]\nname = "x"\nengnies = 2\n')
    with pytest.raises(LauncherError, match="found engnies"):
        hosts.load_file(path)


def test_plan_keeps_counts_and_shares_n_among_the_rest() -> None:
    counted, free1, free2 = Host("a", engines=3), Host("b"), Host("c")
    assert [c for _, c in hosts.plan([counted, free1, free2], 8)] == [3, 3, 2]
    assert [c for _, c in hosts.plan([counted, free1], 2)] == [3, 1]
    assert [c for _, c in hosts.plan([free1, free2], 3)] == [2, 1]


def test_ssh_config_alias_and_option_precedence(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "Host head\n  HostName 10.231.1.2\n  User bob\n  Port 2200\n  IdentityFile ~/.ssh/head\n"
    )
    ep = hosts.resolve(Host("head"), {"ssh_config": str(config)})
    assert (ep.hostname, ep.user, ep.port) == ("10.231.1.2", "bob", 2200)
    assert ep.key_files[0].endswith("/.ssh/head") and ep.strict_host_keys == "yes"
    ep = hosts.resolve(
        Host("head", user="carol", port=22), {"ssh_config": str(config), "user": "x"}
    )
    assert (ep.user, ep.port) == ("carol", 22)


def test_engines_through_an_ssh_config_alias(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], keys: Keys, tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host box\n  HostName 127.0.0.1\n  Port {loopback_sshd.port}\n  User root\n"
        f"  IdentityFile {keys.user}\n"
    )
    options = {**ssh_options, "ssh_config": str(config), "user": "", "key_file": ""}
    cluster = par.Cluster(engines="ssh", hosts="box:2", **options)
    with cluster as rc:
        assert len(rc.ids) == 2
        (es,) = cluster.engines.values()
        assert "par.engine" in es.output(50)
