"""The local launcher passes the conformance suite every launcher must pass."""

from par.testing import LauncherConformance, par_cluster, par_home  # noqa: F401 - fixtures


class TestLocalLauncher(LauncherConformance):
    launcher = "local"
