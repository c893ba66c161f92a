"""``python -m par.engine.forkserver``: engines forked from one warm process.

An engine started as a new interpreter pays for its own imports (par, zmq,
cloudpickle: about 0.2 s of CPU, far more on a loaded machine). The fork
server imports them, and the user's ``--preload`` modules, once, then forks
each engine from itself, so that N engines cost N forks. The engines share
the server's pages copy-on-write until they write to them; the server turns
its collector off and freezes what the imports made (``gc.freeze``), so that no
engine's collector writes to those objects and copies their pages.

A forked engine makes fresh, before it runs anything, what it must not share:
a session of its own (as :func:`par.process.spawn` gives), its own log as
stdout and stderr, a launch mark of its own in its environment (inherited by
what its tasks start; see :mod:`par.process`), the default SIGTERM and SIGINT
handling, NumPy's global random state if NumPy is loaded (``random`` reseeds
itself at a fork), and the collector back on. What holds threads or sockets,
the engine's ZeroMQ context and control thread, is made after the fork, in the
engine; the server makes none, so it forks with one thread. Each engine
registers with its own pid, as an engine started alone does.

The server reports each engine as a JSON line on ``--report-fd`` (pid, mark,
log), or what stopped it forking, and closes that pipe once done. It stays
the engines' parent: it reaps each as it ends and appends ``pid returncode``
(negative: killed by that signal) to its exits file, so that a launcher in
any process can say how an engine ended, and it exits with its last engine.
SIGTERM makes it stop forking and pass SIGTERM on to its engines.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from typing import Any

from ..paths import open_private_log
from ..process import MARK_VARIABLE
from .__main__ import engine_parser, enter_work_dir, preload, run_engine

log = logging.getLogger("par.engine")


def parser() -> argparse.ArgumentParser:
    """The fork server's options: an engine's, and how many to fork and where they log."""
    p = engine_parser(
        "python -m par.engine.forkserver",
        "Fork engines from one process that imports par (and --preload modules) once.",
    )
    p.add_argument("-n", type=int, required=True, help="engines to fork")
    p.add_argument(
        "--logs",
        required=True,
        help="path prefix: engine i logs to PREFIX-i.log; exits are recorded in PREFIX.exits",
    )
    p.add_argument(
        "--report-fd", type=int, required=True, help="pipe to report the engines on (JSON lines)"
    )
    return p


class Server:
    """Forks the engines, then waits on them as their parent."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children: set[int] = set()
        self.exits = f"{args.logs}.exits"
        self.stopping = False

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def _report(self, entry: dict[str, Any]) -> None:
        try:
            os.write(self.args.report_fd, (json.dumps(entry) + "\n").encode())
        except BrokenPipeError:  # the launcher gave up waiting: fork no more (it stops us)
            self.stopping = True

    def fork_all(self) -> bool:
        """Fork the engines, reporting each; True in an engine (which then runs), False here."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if threads:
            log.warning(
                "fork server: forking with threads running (%s), started by preloaded "
                "modules; a lock one of them holds stays held in every engine",
                ", ".join(threads),
            )
        gc.freeze()
        t0 = time.monotonic()
        for i in range(self.args.n):
            if self.stopping:
                self._report({"error": f"stopped by SIGTERM after {i} of {self.args.n} engines"})
                break
            engine_log = f"{self.args.logs}-{i}.log"
            mark = secrets.token_hex(8)
            sys.stdout.flush()
            sys.stderr.flush()
            # Held back over the fork: the child must not take a SIGTERM with our handler.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                pid = os.fork()
            except OSError as exc:  # a process limit, or memory
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
                self._report({"error": f"cannot fork engine {i + 1} of {self.args.n}: {exc}"})
                break
            if pid == 0:
                self._become_engine(engine_log, mark)
                return True
            self.children.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            self._report({"pid": pid, "mark": mark, "log": engine_log, "exits": self.exits})
        os.close(self.args.report_fd)
        took = time.monotonic() - t0
        log.info("fork server: forked %d engines in %.2f s", len(self.children), took)
        return False

    def _become_engine(self, engine_log: str, mark: str) -> None:
        """In a forked child: make fresh what an engine must not share with the server."""
        try:
            os.close(self.args.report_fd)
            os.setsid()
            fd = open_private_log(engine_log)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            os.environ[MARK_VARIABLE] = mark
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            signal.signal(signal.SIGINT, signal.default_int_handler)
            gc.enable()
            numpy_random = sys.modules.get("numpy.random")
            if numpy_random is not None:
                numpy_random.seed()  # from the OS: else every engine draws the same numbers
        except BaseException as exc:  # never run on as a second server
            os.write(2, f"par fork server: engine could not start: {exc!r}\n".encode())
            os._exit(1)

    def reap(self) -> None:
        """Wait for every engine to end, recording how each did; then return."""
        with open(open_private_log(self.exits), "a") as exits:
            while self.children:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                self.children.discard(pid)
                exits.write(f"{pid} {os.waitstatus_to_exitcode(status)}\n")
                exits.flush()


def run() -> int:
    """Import once, fork the engines; in each engine run it, in the server wait for them."""
    args = parser().parse_args()
    if args.n < 1:
        print(f"par fork server: -n must be 1 or more, not {args.n}", file=sys.stderr)
        return 2
    gc.disable()  # no collection frees holes in pages the engines will share
    logging.basicConfig(level=logging.INFO, format="%(asctime)s par.engine %(message)s")
    enter_work_dir(args)
    preload(args.preload)
    server = Server(args)
    if server.fork_all():
        return run_engine(args)
    server.reap()
    return 0


if __name__ == "__main__":
    sys.exit(run())
