"""What par's messages say: their header keys, the two queues, and the batch layouts.

:mod:`par.protocol` frames, signs and parses a message; this module names
what is inside. Header keys are short, since a header travels with every
task: each has a named constant here that says what it holds.

Two messages carry many at once, and are built and parsed only here:

* A **task batch** (an ``apply`` request to the task queue, or the tasks the
  controller sends one engine in one go) carries several calls of one
  function. Its header's ``ids`` names the tasks in order; its payload is
  the function once, then each task's arguments; its buffers are each
  task's buffers in turn, and ``nb`` counts them per task (absent when
  there are none). A batch of one is a plain request: its payload and
  buffers are its own, whatever they hold.
* A **reply batch** (kind ``replies``: an engine's replies finished close
  together, or the replies the controller sends a client in one loop pass)
  carries several replies. Its header's ``hs`` lists their headers, each
  with its own buffer count ``b``, and ``np`` their payload counts; its
  payload and buffers are theirs in turn.

Both are plain lists and tuples: they are built and taken apart once per
task, on the hot path. A third, the **failure batch** (kind ``failed``: tasks
the controller fails together with one error, as an abort of many), names
the tasks in ``ids``, with the status, error name and method they share as a
reply's header has them; its payload is the error's content, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# ---- header keys ------------------------------------------------------------------------
# Framing, written by par.protocol
KIND = "t"  # the message's type: apply, execute, reply, replies, query, event, ...
BUFFERS = "b"  # how many raw buffers trail the message (of a reply in a batch: its own)
PACKED = "pk"  # the sizes of payload items packed in the head frame
CHUNKED = "ck"  # the sizes of the buffers that follow in chunks
# A request
IDS = "ids"  # the message id of each task it carries
CLIENT = "c"  # the routing identity of the client that sent it
QUEUE = "q"  # DIRECT or LOAD_BALANCED
TARGETS = "tg"  # a direct request's engine ids, one per id
FUNCTION = "f"  # the digest of the function an apply calls
MAP = "mp"  # apply the function over its arguments' items, as map() does
SILENT = "x"  # an execute that displays nothing
SUBMITTED = "ts"  # when the client sent it
LABEL = "lb"
COALESCE = "co"  # the hub gathers a broadcast's replies into one message
RETRIES = "rt"  # load-balanced flags: retries on failure,
ALLOWED = "al"  # the engines it may run on,
AFTER = "af"  # tasks to finish first,
FOLLOW = "fo"  # tasks whose engines it must run on,
TIMEOUT = "to"  # and seconds its dependencies may take
BUFFER_COUNTS = "nb"  # a task batch's buffers per task
# A reply (and a stream of output: ID, ENGINE, CLIENT; a reply to a direct request that
# the engine sends its client through the hub, as large ones go: CLIENT)
ID = "id"  # the message id it answers
STATUS = "st"  # ok, error or aborted
ENAME = "en"  # the error's type name
ENGINE = "e"  # the engine that ran it
METHOD = "m"  # apply or execute
STARTED = "ts"  # when the engine started it (a request's SUBMITTED key)
COMPLETED = "tc"
STREAMED = "ns"  # output chunks streamed while it ran
PUBLISHED = "pd"  # buffers per item of data published while it ran
STDOUT = "o"  # output not streamed, carried in the reply
STDERR = "r"
DISPLAYS = "dp"
EXECUTE_RESULT = "er"
EXECUTION_COUNT = "ec"
REPLY_HEADERS = "hs"  # a reply batch's headers
PAYLOAD_COUNTS = "np"  # a reply batch's payload items per reply
# An engine's hello through the direct device, said again when that connection came back
HELD = "hd"  # the direct requests it holds, not yet answered
# A stream of output, an event, a query and its answer
NAME = "n"  # a stream's kind: stdout, stderr, display or data
DATA = "d"  # a stream's text, an event's data, a query's answer
EVENT = "k"  # an event's kind
TIME = "time"  # when the event happened
OP = "op"  # a query's operation
QUERY_ID = "qid"
OK = "ok"  # a query answered
ERROR = "err"  # why not
# An engine's registration and heartbeats
PID = "pid"
HOST = "host"
INFO = "info"  # what the engine says of itself (an MPI rank, a previous id)
HEARTBEAT = "hb"  # seconds between heartbeats, as the controller asks
STATS = "stats"  # a heartbeat's load figures
ASK = "ask"  # a heartbeat that wants an answer (hbok): its engine heard nothing for a while

# ---- the two queues ----------------------------------------------------------------------
DIRECT = "d"  # a request to the engines it names (header QUEUE)
LOAD_BALANCED = "t"  # a request the task scheduler places
# Records name them as ipyparallel's do (db_query's "queue").
RECORD_QUEUE = {DIRECT: "mux", LOAD_BALANCED: "task"}

# Header keys an engine reads from a request besides its ids and targets.
ENGINE_KEYS = (FUNCTION, MAP)
# Header keys that differ between the tasks of one batch.
PER_TASK_KEYS = frozenset((IDS, SUBMITTED, BUFFER_COUNTS))
# Header keys that describe a whole message (all its tasks, its framing), not one task.
MESSAGE_KEYS = frozenset((IDS, TARGETS, BUFFER_COUNTS, BUFFERS, PACKED, CHUNKED, CLIENT, COALESCE))

Frames = list[Any]  # bytes, memoryviews or zmq.Frames
Task = tuple[str, Frames, Frames]  # one task of a batch: its id, payload and buffers
Parts = tuple[dict[str, Any], Frames, Frames]  # a request or a reply: header, payload, buffers


# ---- task batches ------------------------------------------------------------------------


def join_tasks(header: dict[str, Any], tasks: Sequence[Task]) -> tuple[Frames, Frames]:
    """Lay tasks of one function out as one message: set ``header``'s ids (and buffer
    counts) and return its payload and buffers. Each task's payload is [function,
    arguments], but a batch of one is sent as it is."""
    if len(tasks) == 1:
        mid, payload, buffers = tasks[0]
        header[IDS] = [mid]
        header.pop(BUFFER_COUNTS, None)
        return payload, buffers
    _, first, _ = tasks[0]
    ids, payload, buffers, counts = [], [first[0]], [], []  # the function, once
    for mid, own, bufs in tasks:
        ids.append(mid)
        payload.append(own[1])
        buffers.extend(bufs)
        counts.append(len(bufs))
    header[IDS] = ids
    if buffers:
        header[BUFFER_COUNTS] = counts
    else:
        header.pop(BUFFER_COUNTS, None)
    return payload, buffers


def buffer_counts(header: dict[str, Any], nbuffers: int) -> list[int]:
    """How many of a task message's ``nbuffers`` buffers belong to each of its tasks."""
    counts: list[int] | None = header.get(BUFFER_COUNTS)
    if counts is not None:
        return counts
    return [nbuffers] + [0] * (len(header[IDS]) - 1)


def split_tasks(header: dict[str, Any], payload: Frames, buffers: Frames) -> list[Task]:
    """The tasks of a task message, each with its own payload [function, arguments] and
    buffers (ValueError if the message does not hold them)."""
    ids = header[IDS]
    if len(ids) == 1:
        return [(str(ids[0]), payload, buffers)]
    counts = buffer_counts(header, len(buffers))
    if len(payload) != len(ids) + 1 or len(counts) != len(ids) or sum(counts) != len(buffers):
        raise ValueError(f"a batch of {len(ids)} tasks with {len(payload)} payload items")
    function, tasks, pos = payload[0], [], 0
    for mid, args, n in zip(ids, payload[1:], counts, strict=True):
        tasks.append((str(mid), [function, args], buffers[pos : pos + n]))
        pos += n
    return tasks


def joinable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two load-balanced requests (their headers) can travel as one task batch:
    one function, and the same flags."""
    if a.get(QUEUE) != LOAD_BALANCED or b.get(QUEUE) != LOAD_BALANCED or a.keys() != b.keys():
        return False
    return all(a[k] == b[k] for k in a if k not in PER_TASK_KEYS)


def merge_tasks(requests: Sequence[Parts]) -> Parts:
    """One task batch of several :func:`joinable` requests (header, payload, buffers), in
    order: the first's header with every task's id."""
    if len(requests) == 1:
        return requests[0]
    head, first, _ = requests[0]
    header = dict(head)
    ids, payload, buffers, counts = [], [first[0]], [], []  # the function, once
    for h, own, bufs in requests:
        ids.extend(h[IDS])
        payload.extend(own[1:])
        buffers.extend(bufs)
        counts.extend(buffer_counts(h, len(bufs)))
    header[IDS] = ids
    if buffers:
        header[BUFFER_COUNTS] = counts
    else:
        header.pop(BUFFER_COUNTS, None)
    return header, payload, buffers


# ---- reply batches -----------------------------------------------------------------------


def join_replies(replies: Sequence[Parts]) -> Parts:
    """One ``replies`` message (header, payload, buffers) carrying several replies."""
    headers, counts, payload, buffers = [], [], [], []
    for h, own, bufs in replies:
        if bufs:
            h[BUFFERS] = len(bufs)
        else:
            h.pop(BUFFERS, None)
        headers.append(h)
        counts.append(len(own))
        payload.extend(own)
        buffers.extend(bufs)
    return {KIND: "replies", REPLY_HEADERS: headers, PAYLOAD_COUNTS: counts}, payload, buffers


def split_replies(header: dict[str, Any], payload: Frames, buffers: Frames) -> list[Parts]:
    """The replies a ``replies`` message carries (ValueError if it does not hold them)."""
    replies, pos, bpos = [], 0, 0
    for h, n in zip(header[REPLY_HEADERS], header[PAYLOAD_COUNTS], strict=True):
        nbuf = int(h.get(BUFFERS, 0))
        replies.append((h, payload[pos : pos + n], buffers[bpos : bpos + nbuf]))
        pos += n
        bpos += nbuf
    if pos != len(payload) or bpos != len(buffers):
        raise ValueError("a reply batch whose counts do not match its frames")
    return replies
