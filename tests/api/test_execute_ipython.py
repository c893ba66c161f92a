"""IPython syntax in ``execute``: magics, cell magics and shell escapes on engines.

Engines 0 and 1 run IPython syntax; engine 2 plays an engine without IPython;
engine 3 runs plain Python only, and must never load IPython.
"""

from __future__ import annotations

import sys

import par
import psutil
import pytest

pytest.importorskip("IPython")

IDLE_ENGINE_RSS = 30_000_000  # bytes


def test_execute_runs_magics_cell_magics_and_shell_escapes(rc: par.Client) -> None:
    dv = rc[0:2]
    dv.execute("a = 5", block=True)
    for stdout in dv.execute("%whos", block=True).stdout:
        assert ["a", "int", "5"] in [line.split() for line in stdout.splitlines()[2:]]
    timed = dv.execute("%%timeit -n 2 -r 1\nb = a * 2\n", block=True)
    assert all("per loop" in out for out in timed.stdout)
    shell = rc[0].execute("!echo from a shell\nlisted = !printf 'one\\ntwo\\n'", block=True)
    assert shell.stdout.split() == ["from", "a", "shell"]
    assert rc[0].pull("list(listed)", block=True) == ["one", "two"]


def test_the_final_expression_of_an_ipython_cell_is_its_result(rc: par.Client) -> None:
    reply = rc[0].execute("x = 3\n%time y = x * 2\ny", silent=False, block=True).get()
    assert reply.execute_result["data"]["text/plain"] == "6"
    assert "Wall time" in reply.stdout


def test_ipython_errors_reach_the_client(rc: par.Client) -> None:
    with pytest.raises(par.RemoteError, match="nosuchmagic") as info:
        rc[0].execute("%nosuchmagic", block=True)
    assert info.value.ename == "UsageError"
    with pytest.raises(par.RemoteError) as info:  # not IPython either: Python's own error
        rc[0].execute("1 +", block=True)
    assert info.value.ename == "SyntaxError" and "pip install" not in info.value.evalue


def test_clear_keeps_what_ipython_needs(rc: par.Client) -> None:
    rc[1].execute("%whos", block=True)
    rc[1].clear(block=True)
    assert rc[1].execute("%who", block=True).stdout == "Interactive namespace is empty.\n"


class NoIPython:
    """An import finder that makes this process look as if IPython were not installed."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.partition(".")[0] == "IPython":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _uninstall_ipython() -> None:
    import sys

    sys.meta_path.insert(0, NoIPython())


def test_without_ipython_python_runs_and_ipython_syntax_says_to_install_it(
    rc: par.Client,
) -> None:
    rc[2].apply_sync(_uninstall_ipython)
    with pytest.raises(par.RemoteError, match=r"pip install ipython") as info:
        rc[2].execute("a = 1\n%whos", block=True)
    assert info.value.ename == "SyntaxError"
    with pytest.raises(par.RemoteError) as info:
        rc[2].execute("1 +", block=True)
    assert info.value.ename == "SyntaxError" and "pip install" not in info.value.evalue
    reply = rc[2].execute("b = 2\nb * 3", silent=False, block=True).get()
    assert reply.execute_result["data"]["text/plain"] == "6"


def test_an_engine_that_never_saw_ipython_syntax_stays_small(rc: par.Client) -> None:
    engine = rc[3]
    engine.execute("import math\nc = math.sqrt(16)", block=True)
    assert engine.execute("c", silent=False, block=True).get().execute_result is not None
    pid = engine.apply_sync(lambda: __import__("os").getpid())
    if sys.platform.startswith("linux"):  # what RSS counts differs elsewhere
        rss = psutil.Process(pid).memory_info().rss
        assert rss < IDLE_ENGINE_RSS, f"an idle engine holds {rss / 1e6:.1f} MB"
    assert engine.apply_sync(lambda: "IPython" in __import__("sys").modules) is False
