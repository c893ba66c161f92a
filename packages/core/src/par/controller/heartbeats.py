"""The control relay's loop: engines' heartbeats answered there, the hub told in batches.

Every engine beats once a heartbeat (a second by default), so 10,000 engines
send 10,000 messages a second that each want an answer and a look at the
engine's books. One at a time in the hub, they took most of its loop at that
scale, and the hub's loop is what every task waits on. So the control relay
(relays.py) answers them: it authenticates each message from an engine with
the cluster's key, keeps each heartbeat's stats, and answers one that asks
(``ask``) with ``hbok`` (made and signed once an interval). An engine asks
only once it has heard nothing from the controller for a sixth of its
timeout (10 s by default), and for two intervals after the interval grew
every beat is answered, so that every engine hears it: an answer to every
beat cost the relay a send and every engine a wake each heartbeat, for news
an engine needs far less often. Everything else (what it cannot
authenticate too: the hub drops it and counts it), and everything the hub
sends engines, it passes on as it came. Every ``every`` seconds (half a
heartbeat) it sends the hub one message, ``[b"", beats, caught up]``, where
``beats`` maps the identity of each engine that beat since the last to its
latest stats (msgpack); no engine's identity is empty, so no engine can send one. The hub
marks them all alive at once (``EngineControl.beats``), and tells an engine it
does not know to register again, as it did each heartbeat of such an engine.
``caught up`` (``b"1"``, else ``b"0"``) says whether the relay had read every
message waiting: a relay starved of CPU falls behind, and while it is, the
hub judges no engine silent (heartbeats waiting behind its backlog are not
silence), as while its own socket has a backlog.

The interval grows with the engine count, as dask's scheduler lengthens its
workers' heartbeats: past ``per_second`` engines a second (1,000 by default)
it is as many whole seconds as keep the beats near that rate, at most
``LONGEST``. 10,000 engines then cost the relay, the hub and the hosts what
1,000 do, and an engine that hangs is found in six heartbeats all the same
(one that dies is found at once: its connection drops). The interval only
grows while the controller runs, so no engine still beating at an older,
shorter one can be judged by a shorter timeout than it keeps. The hub sends
the relay the new interval (``[b"", seconds]``), which puts it in every
``hbok`` from then on, and engines take it from there (until they do, they
beat more often than they need, never less).
"""

from __future__ import annotations

import math
import time
from typing import Any

import zmq

from ..messages import ASK, HEARTBEAT, KIND, STATS
from ..protocol import Session, decode, drain, encode, recv_frames, send_frames, waiting

BEATS = b""  # the first frame of a batch of heartbeats, which no engine can send
READ_AT_ONCE = 1024  # messages read from one side before the other's turn
# The longest interval: an engine gives up on a controller silent for 60 s (its
# ``--controller-timeout``), six of these.
LONGEST = 10.0


def interval(base: float, engines: int, per_second: int) -> float:
    """Seconds between heartbeats for ``engines`` engines: ``base``, or, when they would
    beat more than ``per_second`` times a second (0: no bound), the whole seconds that
    keep them near it, at most ``LONGEST`` (and never shorter than ``base``)."""
    if per_second <= 0 or engines <= base * per_second:
        return base
    return max(base, min(LONGEST, float(math.ceil(engines / per_second))))


def to_relay(seconds: float) -> list[bytes]:
    """The hub's message telling the control relay engines' new heartbeat interval."""
    return [BEATS, encode(seconds)]


def is_beats(frames: list[Any]) -> bool:
    """Whether a message the hub read on its control socket is a batch of heartbeats."""
    return len(frames) == 3 and len(frames[0]) == 0


def beats_of(frames: list[Any]) -> tuple[dict[bytes, Any], bool]:
    """The engines of a batch of heartbeats, each with its latest stats, and whether the
    relay had read all that waited when it sent it."""
    return dict(decode(frames[1])), bytes(frames[2]) == b"1"


def run(engines: zmq.Socket, hub: zmq.Socket, session: Session, every: float) -> None:
    """Relay between engines' control connections and the hub until the context ends."""
    hbok = session.serialize({KIND: "hbok"})
    beats: dict[bytes, Any] = {}
    news_until = 0.0  # every beat is answered until then: the interval grew
    answer_all = False

    def from_engine(frames: list[Any]) -> None:
        if len(frames) == 2:  # [identity, head]: a heartbeat is one frame
            header = session.lone_header(frames[1])
            if header is not None and header.get(KIND) == "hb":
                ident = bytes(frames[0])
                beats[ident] = header.get(STATS)
                if answer_all or header.get(ASK):
                    send_frames(engines, [ident, *hbok])
                return
        send_frames(hub, frames)

    def from_hub(frames: list[Any]) -> None:
        nonlocal hbok, news_until, answer_all
        if len(frames[0]) == 0:  # no engine's identity: the heartbeat interval grew
            seconds = decode(frames[1])
            hbok = session.serialize({KIND: "hbok", HEARTBEAT: seconds})
            # Every engine beats within two new intervals (it still keeps an older,
            # shorter one): each hears the news in that beat's answer.
            news_until = time.monotonic() + 2 * float(seconds)
            answer_all = True
            return
        send_frames(engines, frames)

    poller = zmq.Poller()
    poller.register(engines, zmq.POLLIN)
    poller.register(hub, zmq.POLLIN)
    due = time.monotonic() + every
    while True:
        wait = max(0.0, due - time.monotonic())
        for sock, _ in poller.poll(round(wait * 1000)):
            if sock is engines:
                drain(engines, recv_frames(engines, block=False), from_engine, READ_AT_ONCE)
            else:
                drain(hub, recv_frames(hub, block=False), from_hub, READ_AT_ONCE)
        now = time.monotonic()
        answer_all = now < news_until
        if now >= due:
            send_frames(hub, [BEATS, encode(beats), b"0" if waiting(engines) else b"1"])
            beats = {}
            due = time.monotonic() + every
