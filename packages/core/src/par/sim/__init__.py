"""Simulated engines: hundreds of engine stand-ins in one process, to load a real controller.

A real engine is a process of its own (about 27 MB and a second of imports),
so one machine runs hundreds of them, not the thousands that a large
allocation starts. A simulated engine is an object that opens the three
connections a real engine opens, under one routing identity, and sends and
answers the same messages, built and parsed by :mod:`par.protocol`: it
registers, says it is ready, heartbeats at the rate the controller asks for,
and answers every request it is sent (direct, load-balanced, broadcast) as a
task that returned None (a map's chunk: a None for each call), at once or
after a fixed delay, one task at a time as a real engine runs them. It runs
no code. The controller under test is the real one, unchanged.

- :mod:`par.sim.swarm`: one process's engines and the loop that drives them;
  ``python -m par.sim`` runs it, taking commands on stdin.
- :mod:`par.sim.driver`: :class:`SimEngines` starts such processes and drives
  them from Python (the tests and the benchmarks).
"""

from .driver import SimEngines

__all__ = ["SimEngines"]
