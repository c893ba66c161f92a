"""The mpi launcher passes the conformance suite every launcher must pass."""

from par.testing import LauncherConformance


class TestMPILauncher(LauncherConformance):
    launcher = "mpi"
    engines_share_fate = True  # mpiexec ends the whole job when one rank dies
