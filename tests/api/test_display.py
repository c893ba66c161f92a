"""Rich display from tasks (par.display, IPython's display) and execute results."""

from __future__ import annotations

import base64

import par
import pytest
from par.client.hubresult import AsyncHubResult
from par.client.ledger import Ledger
from par.client.outputs import ExecuteReply
from par.client.replies import Reply


class Rich:
    """An object with several representations, as a notebook library's objects have."""

    def _repr_html_(self) -> str:
        return "<b>rich</b>"

    def _repr_png_(self) -> bytes:
        return b"\x89PNG not really"

    def _repr_markdown_(self) -> tuple[str, dict[str, int]]:
        return "**rich**", {"width": 3}

    def __repr__(self) -> str:
        return "Rich()"


RICH = {
    "text/plain": "Rich()",
    "text/html": "<b>rich</b>",
    "text/markdown": "**rich**",
    "image/png": base64.b64encode(b"\x89PNG not really").decode(),
}


def show_between_prints() -> str:
    import sys

    print("before")
    par.display(Rich())
    print("after")
    print("complaint", file=sys.stderr)
    return "done"


def test_ipython_is_not_loaded_on_engines_until_a_task_imports_it(rc: par.Client) -> None:
    # Engine 3 runs no IPython code in this module: the display hook costs it nothing.
    assert rc[3].apply_sync(lambda: "IPython" in __import__("sys").modules) is False


def test_par_display_captures_mime_bundles_in_order(
    rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    ar = rc[0:2].apply_async(show_between_prints)
    assert ar.get() == ["done", "done"]
    assert ar.outputs == [[{"data": RICH, "metadata": {"text/markdown": {"width": 3}}}]] * 2
    assert ar.metadata[0]["outputs"] == ar.outputs[0] and ar.stdout[0] == "before\nafter\n"
    assert ar.metadata[0].positions == [(len("before\n"), 0)]

    with ar.stream_output():
        ar.wait()
    out = capsys.readouterr().out
    for eid in (0, 1):  # each engine's output in the order it happened
        before = out.index(f"[stdout:{eid}] before")
        assert before < out.index(f"[output:{eid}]") < out.index(f"[stdout:{eid}] after")
    assert "Rich()" in out

    ar.display_outputs(groupby="engine")
    out = capsys.readouterr().out
    assert out.index("[stdout:0]") < out.index("[output:0]") < out.index("[stdout:1]")
    ar.display_outputs(groupby="order")
    out = capsys.readouterr().out
    assert out.index("[stdout:1]") < out.index("[output:0]") < out.index("[output:1]")
    ar.display_outputs(result_only=True)
    assert "[output:" not in capsys.readouterr().out


def test_a_long_task_streams_its_displays(rc: par.Client) -> None:
    def slow_show() -> None:
        import time

        par.display({"text/plain": "first"}, raw=True)
        time.sleep(0.5)  # the control thread streams the first display meanwhile
        par.display("second", metadata={"source": "test"})

    ar = rc[0].apply_async(slow_show)
    ar.get()
    assert [o["data"]["text/plain"] for o in ar.outputs] == ["first", "'second'"]
    assert ar.outputs[1]["metadata"] == {"source": "test"}


def test_ipython_display_in_a_task_is_captured(rc: par.Client) -> None:
    pytest.importorskip("IPython")

    def with_ipython() -> bool:
        import sys

        from IPython.display import HTML, display, publish_display_data

        display(HTML("<i>hi</i>"), 7)
        publish_display_data({"text/plain": "published"})
        display("printed instead", display_id="an-id")  # display ids: printed, as without a shell
        return "IPython.core.display_functions" in sys.modules

    ar = rc[0].apply_async(with_ipython)
    assert ar.get() is True
    data = [o["data"] for o in ar.outputs]
    assert data[0]["text/html"] == "<i>hi</i>" and data[1] == {"text/plain": "7"}
    assert data[2] == {"text/plain": "published"} and len(data) == 3
    assert ar.stdout == "printed instead\n"


def test_display_misuse_and_the_output_cap(rc: par.Client) -> None:
    class Unsendable:
        def _repr_json_(self) -> object:
            return object()

    with pytest.raises(par.RemoteError, match="plain data"):
        rc[0].apply_sync(lambda: par.display(Unsendable()))
    with pytest.raises(par.RemoteError, match="raw=True"):
        rc[0].apply_sync(lambda: par.display("text", raw=True))

    def huge() -> int:
        par.display({"text/html": "x" * (2 << 20)}, raw=True)  # beyond the 1 MiB task cap
        par.display("not kept either")
        print("nor this")
        return 1

    ar = rc[0].apply_async(huge)
    assert ar.get() == 1
    assert ar.outputs == [] and "truncated" in ar.stdout and "nor this" not in ar.stdout

    class BrokenHtml:
        def _repr_html_(self) -> str:
            raise ValueError("no html today")

    ar = rc[0].apply_async(lambda: par.display(BrokenHtml()))
    ar.get()
    assert list(ar.outputs[0]["data"]) == ["text/plain"] and "no html today" in ar.stderr


def test_display_outside_a_task_shows_here(capsys: pytest.CaptureFixture[str]) -> None:
    par.display("here", 2)
    assert capsys.readouterr().out == "here 2\n"


def test_execute_results_are_execute_replies(
    rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    dv = rc[0:2]
    ar = dv.execute("x = 20\nx + 1", silent=False, block=True)
    assert isinstance(ar, par.AsyncResult)
    assert [er["data"] for er in ar.execute_result] == [{"text/plain": "21"}] * 2
    replies = ar.get()
    assert all(isinstance(er, ExecuteReply) for er in replies)
    count = replies[0].execution_count
    assert repr(replies[0]) == f"<ExecuteReply[{count}]: 21>"
    assert replies[0].engine_id == 0 and replies[1]["engine_id"] == 1
    assert [part.get() for part in ar.split()] == replies  # the same messages' replies
    assert replies[0] != replies[1] and len({*replies, *ar.get()}) == 2
    ar.display_outputs()
    assert f"Out[0:{count}]: 21" in capsys.readouterr().out

    silent = dv.execute("x + 1", block=True)  # silent by default, as in ipyparallel
    assert silent.execute_result == [None, None]
    assert dv.execute("x;", silent=False, block=True).execute_result == [None, None]
    assert dv.execute("None", silent=False, block=True).execute_result == [None, None]

    dv.push({"Rich": Rich}, block=True)
    er = rc[0].execute("print('made one')\nRich()", silent=False, block=True).get()
    # Every execute that is not silent counts, with or without a result.
    assert er.execution_count == count + 3 and er.stdout == "made one\n"
    assert er._repr_html_() == "<b>rich</b>" and er._repr_png_() == RICH["image/png"]
    assert er._repr_markdown_() == ("**rich**", {"width": 3})
    assert er._repr_mimebundle_()[0]["text/plain"] == f"Out[0:{count + 3}]: Rich()"
    with pytest.raises(AttributeError):
        er.no_such_key  # noqa: B018

    with pytest.raises(par.CompositeError, match="ZeroDivisionError"):
        dv.execute("1 / 0", silent=False, block=True)


def test_hub_results_carry_outputs() -> None:
    """A result fetched from the controller's records shows the outputs its reply carried."""
    header = {
        "t": "reply",
        "id": "m1",
        "e": 2,
        "st": "ok",
        "m": "execute",
        "ec": 4,
        "o": "text\n",
        "dp": [[{"data": {"text/plain": "shown"}, "metadata": {}}, 5, 0]],
        "er": {"data": {"text/plain": "42"}, "metadata": {}},
    }
    client = _OfflineClient()
    ar = AsyncHubResult(client, ["m1"], {"m1": Reply(header, [b"unused"], [])})  # type: ignore[arg-type]
    assert ar.outputs == [{"data": {"text/plain": "shown"}, "metadata": {}}]
    assert ar.execute_result == {"data": {"text/plain": "42"}, "metadata": {}, "execution_count": 4}
    assert repr(ar.get()) == "<ExecuteReply[4]: 42>"


class _OfflineClient:
    """Just enough of a client for results built from records: its ledger."""

    ledger = Ledger()
