"""The local launcher passes the conformance suite every launcher must pass, with its
engines forked from a fork server (the default on Linux and macOS) and without."""

from par.testing import LauncherConformance


class TestLocalLauncherForking(LauncherConformance):
    launcher = "local"
    options = {"fork": True}


class TestLocalLauncherSpawning(LauncherConformance):
    launcher = "local"
    options = {"fork": False}
