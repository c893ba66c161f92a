"""A controller's settings: one plain dataclass, every field with a default that works.

``par controller``'s options fill it in (``controller/__main__.py``, one
option per field); a setting a user should reach is an option there too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ControllerConfig:
    """Settings of a controller; every field has a default that works."""

    cluster_id: str = "default"
    ip: str = "127.0.0.1"
    scheme: str = "leastload"
    hwm: int | None = None  # requests an engine may hold; None: adapt to task length
    heartbeat: float = 1.0  # seconds between engine heartbeats
    heartbeat_timeout: float = 6.0  # silence after which an engine is lost
    # Past this many engines' heartbeats a second both grow in step (heartbeats.interval)
    heartbeats_per_second: int = 1000
    relay_timeout: float = 30.0  # silence after which a running relay is started again
    disconnect_grace: float = 0.5  # a dropped connection must come back within this
    registration_timeout: float = 30.0
    max_records: int = 10_000
    max_record_bytes: int = 256 << 20
    max_message_bytes: int = 1 << 30  # the largest frame a peer may send (see sockets.py)
    client_hwm: int = 64  # messages queued for a client that is not reading (delivery.py)
    location: str = ""
    curve: str = "auto"  # auto: encrypt whenever listening beyond loopback
    db: str = "memory"  # or "sqlite": records (and results) survive a controller restart
    db_path: str = "records.sqlite"
    owner: int = 0  # the pid of the process whose end stops the cluster (0: none; owner.py)
