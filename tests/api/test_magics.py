"""%px, %%px, %autopx, %pxresult, %pxconfig (skipped where IPython is not installed)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import par
import pytest

pytest.importorskip("IPython")

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture(scope="module")
def ip(rc: par.Client) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    rc[:].activate()
    rc[::2].activate("_even")
    yield shell


def test_px_line_and_cell(
    ip: InteractiveShell, rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("px", "a = 21")
    assert rc[:].pull("a", block=True) == [21] * len(rc.ids)
    ip.run_cell_magic("px", "--no-stream", "print('hello')\na * 2")
    out = capsys.readouterr().out
    assert "[stdout:0]" in out and "hello" in out and re.search(r"Out\[0:\d+\]: 42", out)
    ip.run_cell_magic("px", "--stream -t ::2", "print('streamed')")
    out = capsys.readouterr().out
    assert "[stdout:0] streamed" in out and "[stdout:1]" not in out
    ar = ip.run_cell_magic("px", "--noblock -o last_ar", "b = 1")
    assert ar is ip.user_ns["last_ar"] and ar.get() is not None
    ip.run_cell_magic("px", "--local", "c = 3")
    assert ip.user_ns["c"] == 3 and rc[0].pull("c", block=True) == 3


def test_px_shows_rich_outputs(
    ip: InteractiveShell, rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))\npar.display(7)"
    ip.run_cell_magic("px", "--no-stream -t 0 -o shown", "import par\n" + cell)
    out = capsys.readouterr().out
    assert out.index("[output:0]") < out.index("<IPython.core.display.HTML object>")
    assert "7" in out.split("HTML object>")[1]
    outputs = ip.user_ns["shown"].outputs[0]
    assert [o["data"].get("text/html") for o in outputs] == ["<b>x</b>", None]
    ip.run_cell_magic("px", "--stream -t 1", "import par\npar.display('live')\n'result'")
    out = capsys.readouterr().out
    assert out.index("'live'") < out.index("Out[1:") and "'result'" in out


def test_px_suffix_and_targets(ip: InteractiveShell, rc: par.Client) -> None:
    ip.run_line_magic("px_even", "even = True")
    assert rc[:].apply_sync(lambda: "even" in globals()) == [i % 2 == 0 for i in rc.ids]


def test_pxresult_and_pxconfig(
    ip: InteractiveShell, rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell_magic("px", "--no-stream", "print('again')")
    capsys.readouterr()
    ip.run_line_magic("pxresult", "-e")
    assert "again" in capsys.readouterr().out
    ip.run_line_magic("pxconfig", "--noblock -t 0")
    ar = ip.run_line_magic("px", "x = 5")
    assert isinstance(ar, par.AsyncResult)
    ar.get()
    ip.run_line_magic("pxconfig", "--block -t 0:")
    with pytest.raises(UsageError):
        ip.run_line_magic("pxconfig", "--no-such-flag")
    with pytest.raises(UsageError):
        ip.run_line_magic("pxresult", "--group-outputs colour")


def test_pxconfig_targets_all(ip: InteractiveShell, rc: par.Client) -> None:
    ip.run_line_magic("pxconfig", "--targets 0")
    ip.run_line_magic("pxconfig", "--targets all")
    ip.run_line_magic("px", "on_all = True")
    assert rc[:].apply_sync(lambda: "on_all" in globals()) == [True] * len(rc.ids)
    ip.run_line_magic("pxconfig", "-t 0:")


def test_ipython_cell_magics_run_on_the_engines(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell_magic("px", "--no-stream -t 0:2", "%%timeit -n 3 -r 2\nsum(range(10))")
    out = capsys.readouterr().out
    assert "[stdout:0]" in out and "[stdout:1]" in out and "per loop" in out
    ip.run_line_magic("px", "%who_ls")
    assert "Out[0:" in capsys.readouterr().out


def test_a_figure_shown_on_an_engine_is_an_image_in_ipython(ip: InteractiveShell) -> None:
    pytest.importorskip("matplotlib")
    from IPython.utils.capture import capture_output

    cell = "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])"
    with capture_output() as shown:
        ip.run_cell_magic("px", "--no-stream -t 1", cell)
    images = [o.data for o in shown.outputs if "image/png" in o.data]
    assert len(images) == 1 and images[0]["image/png"].startswith("iVBORw0KGgo")  # base64 PNG


def test_remote_errors_raise(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(par.CompositeError) as info:
        ip.run_cell_magic("px", "--no-stream", "1 / 0")
    assert "ZeroDivisionError" in "\n".join(info.value.render_traceback())


def test_autopx(ip: InteractiveShell, rc: par.Client, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("autopx", "")
    assert "enabled" in capsys.readouterr().out
    ip.run_cell("auto_value = 99")
    ip.run_cell("%autopx")
    assert "disabled" in capsys.readouterr().out
    assert rc[:].pull("auto_value", block=True) == [99] * len(rc.ids)
    assert "auto_value" not in ip.user_ns


def test_start_and_connect_can_activate_the_magics(ip: InteractiveShell) -> None:
    cluster = par.Cluster(n=1)
    try:
        rc = cluster.start_and_connect_sync(activate=True)
        ip.run_line_magic("px", "activated = 'yes'")
        assert rc[0].pull("activated", block=True) == "yes"
    finally:
        cluster.stop_cluster_sync()


def test_a_client_made_in_ipython_registers_px(ip: InteractiveShell, rc: par.Client) -> None:
    magics = ip.magics_manager.magics
    for kind in ("line", "cell"):
        del magics[kind]["px"]
    try:
        with par.Client(cluster_id=rc.connection_info.cluster_id) as other:
            assert "px" in magics["line"] and "px" in magics["cell"]
            ip.run_line_magic("px", "made_here = 1")
            assert rc[:].pull("made_here", block=True) == [1] * len(rc.ids)
            rc[:].activate("_mine")
            with par.Client(cluster_id=rc.connection_info.cluster_id):
                pass  # %px is there: a second client leaves it to the first
            assert magics["line"]["px"].__self__.view.client is other
    finally:
        rc[:].activate()
