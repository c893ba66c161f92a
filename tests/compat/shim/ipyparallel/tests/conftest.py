"""The fixtures ipyparallel's client tests ask for, on par.

``cluster`` starts the par cluster of ``__init__.py`` for each test module (as
ipyparallel's own fixture does), ``ipython`` an IPython shell in a throwaway
IPython directory, and ``Context`` the ZeroMQ context the ``clienttest`` base
hands its clients.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from tempfile import TemporaryDirectory
from unittest import mock

import pytest
import zmq
from IPython.terminal.interactiveshell import TerminalInteractiveShell
from traitlets.config import Config

from . import setup, teardown


@pytest.fixture(autouse=True, scope="module")
def ipython_dir() -> Iterator[str]:
    """A fresh IPython directory, so no test reads or writes the user's."""
    with TemporaryDirectory(suffix=".ipython") as td, mock.patch.dict(os.environ, IPYTHONDIR=td):
        yield td


@pytest.fixture(scope="module")
def cluster(ipython_dir: str) -> Iterator[None]:
    """The par cluster of one test module."""
    setup()
    try:
        yield
    finally:
        teardown()


@pytest.fixture(scope="module")
def ipython(ipython_dir: str) -> Iterator[TerminalInteractiveShell]:
    """An IPython shell, without colours or a history file."""
    config = Config()
    config.TerminalInteractiveShell.colors = "nocolor"
    config.TerminalInteractiveShell.autocall = 0
    config.TerminalInteractiveShell.simple_prompt = True
    config.HistoryManager.hist_file = ":memory:"  # the shell outlives the IPython directory
    shell = TerminalInteractiveShell.instance(config=config)
    yield shell
    TerminalInteractiveShell.clear_instance()


@pytest.fixture(autouse=True)
def Context() -> Iterator[zmq.Context]:
    """The process's ZeroMQ context, destroyed after each test as ipyparallel's fixture does."""
    ctx = zmq.Context.instance()
    try:
        yield ctx
    finally:
        ctx.destroy()
