"""A private Slurm on this machine for tests: munged, slurmctld and one slurmd.

Nothing goes in /etc or /run: the config, state, spool, logs and munge
socket live in one temporary directory, and ``SLURM_CONF`` points Slurm's
commands at it. The node is ``localhost`` with 2 CPUs in partition ``debug``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SLURMCTLD_PORT, SLURMD_PORT = 16817, 16818
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
COMMANDS = ("sbatch", "scancel", "squeue", "sinfo", "scontrol", "srun", "munge", "runuser")

CONFIG = """\
ClusterName=partest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=localhost CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class SlurmUnavailable(Exception):
    """This machine cannot run a private Slurm; the message says why."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ports() -> tuple[int, int]:
    """The documented ports, or free ones if another test run holds them right now."""
    if _port_free(SLURMCTLD_PORT) and _port_free(SLURMD_PORT):
        return SLURMCTLD_PORT, SLURMD_PORT
    return _free_port(), _free_port()


def _base_dir() -> str:
    """A temporary directory the 'munge' user can pass through (pytest's own are root-only)."""
    for candidate in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(candidate) and os.stat(candidate).st_mode & 0o001:
            return candidate
    raise SlurmUnavailable("no world-searchable temporary directory for munged's socket")


def check_machine() -> None:
    """Raise SlurmUnavailable unless root, munge and Slurm's daemons and commands are here."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("a private slurmd and munged need root")
    missing = [p for p in DAEMONS if not os.access(p, os.X_OK)]
    missing += [c for c in COMMANDS if shutil.which(c) is None]
    if missing:
        raise SlurmUnavailable(
            f"missing {', '.join(missing)}: apt-get install slurm-wlm munge (as .ci/run does)"
        )
    try:
        pwd.getpwnam("munge")
    except KeyError:
        raise SlurmUnavailable("no 'munge' user: apt-get install munge")
    _base_dir()


class LocalSlurm:
    """munged + slurmctld + slurmd, private to one test session."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="par-slurm-", dir=_base_dir()))
        self.dir.chmod(0o755)
        self.conf = self.dir / "slurm.conf"
        self.socket = self.dir / "munge" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.dir / "log" / f"{name}.out", "wb")  # noqa: SIM115 - the daemon owns it
        self.processes[name] = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        out.close()

    def _wait(self, what: str, check: list[str], ok: str | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise SlurmUnavailable(f"{name} exited at start:\n{self.logs()}")
            try:
                r = subprocess.run(check, env=self.env, capture_output=True, text=True, timeout=10)
                last = r.stdout + r.stderr
                if r.returncode == 0 and (ok is None or ok in r.stdout.split()):
                    return
            except subprocess.TimeoutExpired:
                last = f"{check[0]} timed out"
            time.sleep(0.3)
        raise SlurmUnavailable(
            f"{what} not ready within {timeout:g} s ({last.strip()}):\n{self.logs()}"
        )

    def start(self) -> None:
        """Start the three daemons and wait for the node to be idle."""
        for sub in ("munge", "state", "spool", "log"):
            (self.dir / sub).mkdir()
        munge = pwd.getpwnam("munge")
        os.chown(self.dir / "munge", munge.pw_uid, munge.pw_gid)
        (self.dir / "munge").chmod(0o755)  # munged insists that clients can reach its socket
        ctld_port, d_port = _ports()
        self.conf.write_text(CONFIG.format(dir=self.dir, ctld_port=ctld_port, d_port=d_port))
        m = self.dir / "munge"
        self._spawn(
            "munged",
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground",
             f"--socket={self.socket}", f"--pid-file={m}/munged.pid",
             f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"],
        )  # fmt: skip
        self._wait("munged", ["munge", "-n", f"--socket={self.socket}"], None, 20)
        self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-f", str(self.conf)])
        self._wait("slurmctld", ["scontrol", "ping"], "UP", 30)
        self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait("the node", ["sinfo", "--noheader", "--format=%T"], "idle", 60)

    def jobs(self) -> list[str]:
        """Lines ``ID NAME STATE`` of every job still queued, running or completing."""
        r = subprocess.run(
            ["squeue", "--noheader", "--format=%i %j %T"],
            env=self.env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return r.stdout.split("\n")[:-1]

    def wait_no_jobs(self, timeout: float = 30.0) -> list[str]:
        """Wait for the queue to empty; return the jobs still there after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := self.jobs()) and time.monotonic() < deadline:
            time.sleep(0.3)
        return left

    def logs(self, lines: int = 15) -> str:
        """The end of every daemon's log, for failure messages."""
        out = []
        for log in sorted((self.dir / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def cancel_all(self) -> None:
        """Cancel every job of this Slurm and wait for the queue to empty."""
        try:
            subprocess.run(
                ["scancel", "--full", "--user=root"], env=self.env, capture_output=True, timeout=30
            )
            self.wait_no_jobs(20)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged, and remove the directory."""
        if "slurmd" in self.processes and "slurmctld" in self.processes:
            self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None:
                continue
            # Each daemon leads its own session: signal that group (runuser and munged too).
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
