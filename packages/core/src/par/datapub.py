"""Publishing data from a running task to its client, as ``ipyparallel.datapub``.

The classic use is a long simulation reporting its progress::

    from par.datapub import publish_data

    def simulate(steps):
        for i in range(steps):
            ...
            publish_data({"step": i, "residual": r})

The client reads the merged latest values in ``ar.data`` (``ar.metadata["data"]``)
while the task still runs. Values are pickled with cloudpickle, so NumPy
arrays and other objects arrive as they are.
"""

from __future__ import annotations

from typing import Any

from . import serialize
from .engine.capture import running_task


def publish_data(data: dict[Any, Any]) -> None:
    """Send ``data`` to the running task's client now; its ``ar.data`` is updated with it.

    The values are copied (pickled) at once, so the task may change them afterwards.
    Raises TypeError if ``data`` is not a dict, RuntimeError outside a task running on
    a par engine, and ``SerializationError`` if a value cannot be pickled.
    """
    if not isinstance(data, dict):
        raise TypeError(f"publish_data takes a dict of names to values, not {type(data).__name__}")
    task = running_task()
    if task is None:
        raise RuntimeError(
            "publish_data works only inside a task running on a par engine "
            "(call it from a function you apply or map, or from code you execute)"
        )
    pickled, buffers = serialize.dumps(data)
    if not task.publish(frozenset(data), pickled, [bytes(b.raw()) for b in buffers]):
        raise RuntimeError(f"task {task.msg_id} is over: its data can no longer be published")
