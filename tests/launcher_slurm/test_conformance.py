"""The slurm launcher passes the conformance suite every launcher must pass, on a real Slurm."""

from par.testing import LauncherConformance


class TestSlurmLauncher(LauncherConformance):
    """Two engines as one two-task job on the private one-node Slurm (default options)."""

    launcher = "slurm"
    startup_timeout = 90.0
