"""The slurm launcher passes the conformance suite every launcher must pass, on a real Slurm."""

from par.testing import LauncherConformance


class TestSlurmLauncher(LauncherConformance):
    """Two engines as one two-task job on the private one-node Slurm (default options)."""

    launcher = "slurm"
    startup_timeout = 90.0
    # scancel ends every process of the job only where Slurm tracks them by cgroup
    # (proctrack/cgroup); the test Slurm tracks them by parent (proctrack/linuxproc).
    sweeps_after_killed_engines = False
