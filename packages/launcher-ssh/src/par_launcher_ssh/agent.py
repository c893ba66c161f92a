"""The remote agent: a standalone script the launcher runs with the remote Python.

It is sent over the SSH channel's stdin (``python - REQUEST_JSON``) and
imports nothing but the standard library, so it works, and reports clearly,
on a host where par is missing or the Python is too old. It prints one JSON
line. Keep it runnable by old Pythons (3.6+): its job includes saying "too old".

Operations (``op`` in the request):

- ``start``: check the Python and par, then start ``commands`` detached
  (own session, output to a log file) and return their PIDs and start times.
  A command marked ``fork`` is a fork server (``par.engine.forkserver``): the
  agent gives it a pipe, reads the engines it forks from it, and returns them
  after the server (marked ``server``); if the server fails, the agent ends
  what it started and answers the error with the server's last output.
- ``status``: which of ``procs`` are alive (a zombie is dead).
- ``signal``: send ``signal`` to the live ``procs``.
- ``stop``: SIGTERM the ``procs``, wait up to ``timeout``, SIGKILL the rest,
  sweep what they started, and remove the files in ``remove`` (the connection
  file holds the key).

Each started process carries a random mark in its environment, as
``par.process`` gives the processes it starts, and every process it starts
inherits it; ``stop`` ends the processes that carry it (found in ``/proc``,
so on Linux hosts), left behind by an engine killed before it could end its
tasks' processes itself.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time

MIN_PYTHON = (3, 11)
MARK_VARIABLE = "PAR_LAUNCH_MARK"  # as in par.process
SWEEP_GRACE = 3.0
FORK_TIMEOUT = 120.0  # seconds a fork server gets to import and fork its engines


def start_time(pid):
    """The kernel's start time of a process, to tell it from a later one with its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(proc):
    """True if the recorded process still runs (not a zombie, not a reused PID)."""
    pid = int(proc["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc (not Linux): kill -0 is all we can know
    if fields[0] in ("Z", "X"):
        return False
    return not proc.get("started") or fields[19] == proc["started"]


def check_python(require):
    """None if this Python can run par; else a message saying what to install."""
    if sys.version_info < MIN_PYTHON:
        found = "{}.{}".format(*sys.version_info[:2])
        need = "{}.{}".format(*MIN_PYTHON)
        return f"Python {found} at {sys.executable} is too old: par needs Python {need} or newer"
    if require:
        import importlib.util

        if importlib.util.find_spec(require.split(".")[0]) is None:
            python = sys.executable
            fix = f"install it with `{python} -m pip install par-core`"
            return f"par is not installed for {python}: {fix}"
    return None


def start(request):
    """Start the commands detached; report PIDs and start times."""
    problem = check_python(request.get("require"))
    if problem:
        return {"error": problem, "kind": "python"}
    started = []
    for cmd in request["commands"]:
        log = cmd["log"]
        os.makedirs(os.path.dirname(log), mode=0o700, exist_ok=True)
        env = dict(os.environ)
        env.update(cmd.get("env") or {})
        mark = os.urandom(8).hex()
        env[MARK_VARIABLE] = mark
        argv, passed = cmd["argv"], []
        if cmd.get("fork"):  # the server reports its engines on a pipe
            reports, write = os.pipe()
            argv, passed = [*argv, "--report-fd", str(write)], [write]
        with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cmd.get("cwd") or None,
                env=env,
                pass_fds=passed,
            )
        proc = {"pid": popen.pid, "started": start_time(popen.pid), "log": log, "mark": mark}
        started.append(proc)
        if passed:
            os.close(passed[0])
            proc["server"] = True
            error = read_forked(reports, int(cmd["n"]), started)
            if error:
                stop({"procs": started, "timeout": 5})
                return {"error": f"{error}; its output:\n{tail(log)}", "kind": "fork"}
    return {"procs": started}


def read_forked(reports, n, started):
    """Add the engines a fork server reports on the pipe ``reports`` to ``started``, until
    it closes the pipe; return what went wrong, if it forked fewer than ``n``."""
    deadline = time.monotonic() + FORK_TIMEOUT
    pending, count = b"", 0
    with os.fdopen(reports, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                return f"the fork server forked {count} of {n} engines in {FORK_TIMEOUT:.0f} s"
            chunk = pipe.read(1 << 16)
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                entry = json.loads(line.decode())
                if "error" in entry:
                    return "the fork server stopped: " + entry["error"]
                count += 1
                pid = int(entry["pid"])
                started.append(
                    {
                        "pid": pid,
                        "started": start_time(pid),
                        "log": entry["log"],
                        "mark": entry["mark"],
                    }
                )
    if count < n:
        return f"the fork server exited after forking {count} of {n} engines"
    return None


def tail(path, lines=20):
    """The last lines of a text file ('' if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 64 * 1024, 0))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def send(procs, sig):
    """Send a signal to the live processes among ``procs``; return those."""
    live = [p for p in procs if alive(p)]
    for p in live:
        try:
            os.kill(int(p["pid"]), sig)
        except OSError:
            pass
    return live


def end(procs, timeout):
    """SIGTERM the live ``procs``, wait up to ``timeout``, SIGKILL the rest; return the
    survivors."""
    procs = send(procs, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while procs and time.monotonic() < deadline:
        time.sleep(0.05)
        procs = [p for p in procs if alive(p)]
    send(procs, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while procs and time.monotonic() < deadline:
        time.sleep(0.05)
        procs = [p for p in procs if alive(p)]
    return procs


def marked(marks):
    """This user's processes (as ``procs`` entries) whose environment carries a mark."""
    wanted = {f"{MARK_VARIABLE}={m}".encode() for m in marks}
    found = []
    for name in os.listdir("/proc") if marks and os.path.isdir("/proc") else []:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if wanted.isdisjoint(f.read().split(b"\0")):
                    continue
        except OSError:  # gone, or another user's
            continue
        proc = {"pid": int(name), "started": start_time(name)}
        if alive(proc):
            found.append(proc)
    return found


def stop(request):
    """End the processes, then those that carry their marks; remove the listed files."""
    left = end(request["procs"], float(request.get("timeout", 10)))
    swept = marked([p["mark"] for p in request["procs"] if p.get("mark")])
    left += end(swept, SWEEP_GRACE)
    for path in request.get("remove", []):
        try:
            os.unlink(path)
        except OSError:
            pass
    return {"left": [p["pid"] for p in left], "swept": [p["pid"] for p in swept]}


def main():
    """Run one request from argv and print the answer as JSON."""
    request = json.loads(sys.argv[1])
    op = request["op"]
    if op == "start":
        answer = start(request)
    elif op == "status":
        answer = {"alive": [alive(p) for p in request["procs"]]}
    elif op == "signal":
        answer = {"signalled": [p["pid"] for p in send(request["procs"], int(request["signal"]))]}
    elif op == "stop":
        answer = stop(request)
    else:
        answer = {"error": f"unknown agent operation {op!r}"}
    sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
