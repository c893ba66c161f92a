"""The wire format: how every par message is framed, signed and parsed.

A message is a ZeroMQ multipart::

    [routing frames...] head payload... buffers...
    head = DELIM signature length header [packed payload]

* ``header`` is a small msgpack map (``length`` is its size, 4 bytes little
  endian); schedulers route on it alone.
* ``payload`` items are pickles or other bytes the receiver interprets. When
  they are small (``PACK_BELOW`` bytes in all) they ride inside the head frame
  after the header, their sizes in the header's ``pk`` key: each frame costs a
  call into ZeroMQ, and a release of the GIL, at every hop, so a small
  message is one frame. Larger payloads are frames of their own.
* ``buffers`` are the raw out-of-band buffers of those pickles (NumPy arrays,
  large bytes); the header's ``b`` key says how many trail the message.

The signature is a keyed BLAKE2b over the rest of the head frame and the
payload frames: everything that decides what the receiver runs. Raw buffers
are left out of it because they are plain data handed to a pickle that *is*
signed; hashing a 100 MB array on every hop would cost more than moving it.

A message whose buffers are large (``CHUNK_ABOVE`` bytes in all) can travel
as several: its head (the header's ``ck`` key lists the buffers' sizes), then
the buffers' bytes in chunks, each a message ``[routing frames...] CHUNK
bytes``. ZeroMQ passes a message on only once all of it has arrived, so a
device in between then forwards each chunk while the next comes in, instead
of holding a whole 100 MB message before sending any of it. The receiver's
:class:`Assembler` joins them (one sender's chunks arrive in order).

This module is the only place a message is framed, signed or parsed; what its
header keys mean, and how one message carries a batch of tasks or of replies,
is :mod:`par.messages`'s.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import mmap
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import zmq

from .messages import BUFFERS, CHUNKED, KIND, PACKED

log = logging.getLogger("par.protocol")

DELIM = b"<PAR|MSG>"
CHUNK = b"<PAR|CHUNK>"  # the first frame of a chunk of a large message's buffers
# The answer to a message signed with another key: unsigned (its sender could not check a
# signature made with a key it does not have), so a client heeds it only while connecting.
REFUSED = b"<PAR|REFUSED>"
CHUNK_BYTES = 2 << 20  # the bytes in each chunk
CHUNK_ABOVE = 8 << 20  # buffers larger than this in all may travel in chunks
STALE_AFTER = 60.0  # seconds after which a message's missing chunks are given up
MAPPED_FROM = 1 << 20  # a buffer joined from chunks this large is a fresh mapping (_blank)
SIG_SIZE = 16
HEAD_START = len(DELIM) + SIG_SIZE  # where the signed part of the head frame starts
BODY_START = HEAD_START + 4  # where the header starts, after its length
PACK_BELOW = 16 * 1024  # payloads smaller than this in all ride in the head frame
SMALL_HEAD = 4096  # a received head frame smaller than this is parsed as a copy
MAX_HEADER_BYTES = 16 << 20  # a sanity bound: captured output (capped per task) rides in headers

# msgpack rather than msgspec: the same wire format, and ~6 MB less in every engine.
_encode = msgpack.packb  # a new packer per call: one shared Packer is not thread-safe


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, strict_map_key=False)


def _decode(data: Any) -> dict[str, Any]:
    """A message header: a msgpack map (ValueError for anything else)."""
    header = _unpack(data)
    if type(header) is not dict:
        raise ValueError("header is not a map")
    return header


Frame = Any  # bytes, memoryview or zmq.Frame


def new_key() -> bytes:
    """Return a fresh random cluster key."""
    return os.urandom(32)


def new_id() -> str:
    """Return a new message id: short, unique and cheap to compare."""
    return uuid.uuid4().hex


def buffer_of(frame: Frame) -> Any:
    """Return a buffer over a frame without copying it."""
    buf = getattr(frame, "buffer", None)
    return frame if buf is None else buf


def nbytes(frames: Iterable[Any]) -> int:
    """The bytes of frames together: bytes, zmq.Frames, kept :class:`Chunks`, or any buffer
    (all of an array's bytes, whatever its shape: its ``len`` counts only its rows)."""
    n = 0
    for f in frames:  # a plain loop, bytes by len: this runs for every task
        if type(f) is bytes:
            n += len(f)
        elif type(f) is Chunks:
            n += f.nbytes
        else:
            n += memoryview(buffer_of(f)).nbytes
    return n


@dataclass(slots=True)
class Message:
    """A parsed, authenticated message."""

    routing: list[Frame]
    header: dict[str, Any]
    payload: list[Frame]
    buffers: list[Frame]
    frames: list[Frame] = field(repr=False)

    @property
    def kind(self) -> str:
        """The message type (header key ``KIND``)."""
        return str(self.header.get(KIND, ""))

    def body(self) -> list[Frame]:
        """The frames after the routing prefix: forwardable unchanged."""
        return self.frames[len(self.routing) :]


class _OtherKey(ValueError):
    """A well-formed message whose signature does not match: signed with another key."""


class Session:
    """Signs outgoing and verifies incoming messages with one cluster key.

    ``trace``, if set, is called with ``"sent"`` and the header of each message built,
    and ``"received"`` and the header of each parsed (a client's ``debug``)."""

    __slots__ = ("_mac", "dropped", "key", "refused", "trace")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a cluster key is required to sign messages")
        self.key = key
        self.dropped = 0  # messages dropped as unauthenticated or malformed
        self.refused = 0  # of which well-formed but signed with another key
        self.trace: Callable[[str, dict[str, Any]], None] | None = None
        self._mac = hashlib.blake2b(key=key, digest_size=SIG_SIZE)  # copied: cheaper than keying

    def sign(self, signed: Frame, payload: Sequence[Frame]) -> bytes:
        """Return the signature of a head frame's signed part and the payload frames."""
        h = self._mac.copy()
        h.update(buffer_of(signed))
        for frame in payload:
            h.update(buffer_of(frame))
        return h.digest()

    def serialize(
        self,
        header: dict[str, Any],
        payload: Sequence[Frame] = (),
        buffers: Sequence[Frame] = (),
    ) -> list[Frame]:
        """Build the frames of a message (without routing frames)."""
        # BUFFERS and PACKED describe this message's framing: never keep a received one's
        if buffers:
            header[BUFFERS] = len(buffers)
        else:
            header.pop(BUFFERS, None)
        sizes = [len(buffer_of(p)) for p in payload]
        packed = 0 < sum(sizes) < PACK_BELOW
        if packed:
            header[PACKED] = sizes
        else:
            header.pop(PACKED, None)
        raw = _encode(header)
        signed = b"".join([len(raw).to_bytes(4, "little"), raw, *(payload if packed else ())])
        frames = [] if packed else list(payload)
        if self.trace is not None:
            self.trace("sent", header)
        return [DELIM + self.sign(signed, frames) + signed, *frames, *buffers]

    def serialize_parts(
        self,
        header: dict[str, Any],
        payload: Sequence[Frame] = (),
        buffers: Sequence[Frame] = (),
    ) -> list[list[Frame]]:
        """Build the messages that carry one: itself, or, if its buffers are larger than
        ``CHUNK_ABOVE`` in all, its head and then its buffers' bytes in chunks."""
        views = [memoryview(buffer_of(b)).cast("B") for b in buffers]
        if sum(len(v) for v in views) <= CHUNK_ABOVE:
            return [self.serialize(header, payload, buffers)]
        out = [self.serialize({**header, CHUNKED: [len(v) for v in views]}, payload)]
        for view in views:
            for start in range(0, len(view), CHUNK_BYTES):
                out.append([CHUNK, view[start : start + CHUNK_BYTES]])
        return out

    def parse(self, frames: list[Frame]) -> Message | None:
        """Parse and authenticate frames; return None (and count it) if invalid.

        Nothing is unpickled here: the caller unpickles payload frames only
        after this returned a message, so a forged pickle is never loaded.
        """
        try:
            msg = self._parse(frames)
        except _OtherKey:
            self.refused += 1
            self.dropped += 1
            return None
        except (ValueError, TypeError, IndexError, msgpack.UnpackException):
            self.dropped += 1
            return None
        if self.trace is not None and msg is not None:
            self.trace("received", msg.header)
        return msg

    def lone_header(self, head: Frame) -> dict[str, Any] | None:
        """The authenticated header of a message that is one head frame and nothing else
        (a heartbeat); None if ``head`` is not one, or does not verify (:meth:`parse`
        says which, and counts it). The control relay reads each engine's heartbeat with
        this: a tenth of what a whole parse costs."""
        data = bytes(buffer_of(head))
        if len(data) < BODY_START or not data.startswith(DELIM):
            return None
        if BODY_START + int.from_bytes(data[HEAD_START:BODY_START], "little") != len(data):
            return None  # a packed payload follows, or it is malformed
        mac = self._mac.copy()
        mac.update(data[HEAD_START:])
        if not hmac.compare_digest(data[len(DELIM) : HEAD_START], mac.digest()):
            return None
        try:
            header = _decode(data[BODY_START:])
        except (ValueError, msgpack.UnpackException):
            return None
        if BUFFERS in header:
            return None
        if self.trace is not None:
            self.trace("received", header)
        return header

    def _parse(self, frames: list[Frame]) -> Message | None:
        idx = -1
        for i, frame in enumerate(frames):
            view = buffer_of(frame)
            if len(view) >= BODY_START and view[: len(DELIM)] == DELIM:
                idx = i
                break
        if idx < 0:
            raise ValueError("no delimiter")
        head = buffer_of(frames[idx])
        if len(head) < SMALL_HEAD:  # slices of bytes cost less than of a memoryview
            head = bytes(head)
        size = int.from_bytes(head[HEAD_START:BODY_START], "little")
        end = BODY_START + size
        if size > MAX_HEADER_BYTES or end > len(head):
            raise ValueError("bad header length")
        header = _decode(head[BODY_START:end])
        nbuf = header.get(BUFFERS, 0)
        if not isinstance(nbuf, int) or nbuf < 0:
            raise ValueError("bad buffer count")
        rest = frames[idx + 1 :]
        if nbuf > len(rest):
            raise ValueError("missing buffers")
        split = len(rest) - nbuf
        payload, buffers = rest[:split], rest[split:]
        if not hmac.compare_digest(
            head[len(DELIM) : HEAD_START], self.sign(head[HEAD_START:], payload)
        ):
            raise _OtherKey("bad signature")
        if PACKED in header:
            payload = _unpack_payload(head, end, header[PACKED]) + payload
        elif end != len(head):
            raise ValueError("trailing bytes in the head frame")
        return Message(frames[:idx], header, payload, buffers, frames)


def _unpack_payload(head: Any, start: int, sizes: Any) -> list[Frame]:
    """The payload items packed in a head frame after its header, as views."""
    if not isinstance(sizes, list):
        raise ValueError("bad packed sizes")
    out = []
    for n in sizes:
        if not isinstance(n, int) or n < 0:
            raise ValueError("bad packed size")
        out.append(head[start : start + n])
        start += n
    if start != len(head):
        raise ValueError("packed sizes do not match the head frame")
    return out


def is_refusal(frames: list[Frame]) -> bool:
    """Whether a received message is a controller's ``REFUSED``."""
    if len(frames) != 1:
        return False
    view = buffer_of(frames[0])
    return len(view) == len(REFUSED) and bytes(view) == REFUSED


def _is_chunk(frame: Frame) -> bool:
    view = buffer_of(frame)
    return len(view) == len(CHUNK) and bytes(view) == CHUNK


class Chunks:
    """A buffer kept as the chunks it came in, without joining them (the hub keeps what
    the direct device passed on only for its records); joined if it is sent on."""

    __slots__ = ("nbytes", "parts")

    def __init__(self, parts: list[Frame], nbytes: int) -> None:
        self.parts = parts
        self.nbytes = nbytes

    def __len__(self) -> int:
        return self.nbytes

    def __bytes__(self) -> bytes:
        return b"".join(buffer_of(p) for p in self.parts)


@dataclass(slots=True)
class _Joining:
    """A message whose buffers are arriving in chunks."""

    msg: Message
    sizes: list[int]
    buffers: list[Any]  # bytearrays being filled, or the lists of chunks kept
    index: int = 0  # the buffer being filled
    filled: int = 0  # bytes in it so far
    heard: float = 0.0  # when its last part came (time.monotonic)

    def skip_full(self) -> None:
        """Move on past the buffers filled (or empty)."""
        while self.index < len(self.sizes) and self.filled == self.sizes[self.index]:
            self.index += 1
            self.filled = 0


class Assembler:
    """Parses what one socket receives, joining messages that come in chunks.

    ``keep_chunks``: the joined message's buffers are :class:`Chunks`, the frames as
    they came, rather than copied into one buffer each (a copy costs most in fresh
    memory, whose pages the system must first map)."""

    def __init__(
        self, session: Session, keep_chunks: bool = False, stale_after: float = STALE_AFTER
    ) -> None:
        self.session = session
        self.keep_chunks = keep_chunks
        self.stale_after = stale_after
        self.joining: dict[tuple[bytes, ...], _Joining] = {}  # by sender (routing frames)

    def drop(self, sender: tuple[bytes, ...]) -> None:
        """Give up what is still coming from a sender that is gone (its routing frames)."""
        self.joining.pop(sender, None)

    def parse(self, frames: list[Frame]) -> Message | Literal[False] | None:
        """A message (parsed and authenticated), None if invalid (counted as dropped), or
        False for a part of a message that has more chunks to come."""
        if len(frames) >= 2 and _is_chunk(frames[-2]):
            return self._add(frames)
        msg = self.session.parse(frames)
        if msg is None or CHUNKED not in msg.header:
            return msg
        sizes = msg.header[CHUNKED]
        if not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes):
            self.session.dropped += 1
            return None
        key = _sender(msg.routing)
        now = time.monotonic()
        for other, joining in list(self.joining.items()):
            # A sender that went quiet mid-message (gone, most likely) or started anew
            if other == key or now - joining.heard > self.stale_after:
                del self.joining[other]
                log.warning("a message's chunks stopped coming; dropped it")
                self.session.dropped += 1
        buffers: list[Any] = [[] for _ in sizes] if self.keep_chunks else [_blank(n) for n in sizes]
        joining = _Joining(msg, sizes, buffers, heard=now)
        joining.skip_full()
        self.joining[key] = joining
        return self._finished(key, joining)

    def _add(self, frames: list[Frame]) -> Message | Literal[False] | None:
        key = _sender(frames[:-2])
        joining = self.joining.get(key)
        data = buffer_of(frames[-1])
        if joining is None or joining.index == len(joining.sizes):
            self.session.dropped += 1
            return None
        end = joining.filled + len(data)
        if end > joining.sizes[joining.index]:
            del self.joining[key]
            self.session.dropped += 1
            return None
        if self.keep_chunks:
            joining.buffers[joining.index].append(frames[-1])
        else:
            joining.buffers[joining.index][joining.filled : end] = data
        joining.filled = end
        joining.heard = time.monotonic()
        joining.skip_full()
        return self._finished(key, joining)

    def _finished(self, key: tuple[bytes, ...], joining: _Joining) -> Message | Literal[False]:
        """The joined message once its last chunk came; until then False."""
        if joining.index < len(joining.sizes):
            return False
        del self.joining[key]
        msg = joining.msg
        if self.keep_chunks:
            msg.buffers = [
                Chunks(p, n) for p, n in zip(joining.buffers, joining.sizes, strict=True)
            ]
        else:
            msg.buffers = joining.buffers
        del msg.header[CHUNKED]
        msg.header[BUFFERS] = len(msg.buffers)
        return msg


def _blank(n: int) -> Any:
    """A writable buffer of ``n`` bytes to join chunks into, in memory taken only as the
    chunks fill it: ``bytearray(n)`` writes zeros over all of it at once, so a large
    message would briefly cost its size twice (the zeroed buffer, and its chunks queued
    in ZeroMQ). A fresh anonymous mapping's pages cost nothing until written."""
    return mmap.mmap(-1, n) if n >= MAPPED_FROM else bytearray(n)


def _sender(routing: list[Frame]) -> tuple[bytes, ...]:
    return tuple(bytes(buffer_of(f)) for f in routing)


DETACH_BELOW = 64 * 1024


def detach(frames: list[Frame]) -> list[Frame]:
    """Copy a kept message's small frames out of ZeroMQ's receive buffers.

    A frame received without copying shares a refcounted buffer with every other
    message read in the same batch; keeping one (a queued task, a stored result)
    would pin the whole buffer. Small frames are copied (cheap); large ones stay
    zero-copy, since they own their buffer.
    """
    out: list[Frame] = []
    for f in frames:
        view = buffer_of(f)
        out.append(bytes(view) if len(view) < DETACH_BELOW else f)
    return out


_MORE = int(zmq.SNDMORE)  # plain ints: pyzmq's flag enums cost microseconds per operation
_NOBLOCK = int(zmq.NOBLOCK)


def send_frames(sock: zmq.Socket, frames: Sequence[Frame]) -> None:
    """Send a multipart message without copying large frames (small ones are copied)."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        if type(frame) is Chunks:
            frame = bytes(frame)
        sock.send(frame, _MORE if i < last else 0, copy=False)


_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


def recv_frames(sock: zmq.Socket, block: bool = True) -> list[Any] | None:
    """Receive a multipart message as frames, without copying; None if ``block`` is
    False and no message waits (checked first: a raised zmq.Again costs microseconds).

    A blocking receive raises zmq.Again once the socket's RCVTIMEO is up: waiting in
    the receive itself costs less than a poll and then a receive.
    """
    if not block and not int(sock.getsockopt(_EVENTS)) & _POLLIN:  # inline: per message
        return None
    return _with_rest(sock, sock.recv(0, copy=False))


def waiting(sock: zmq.Socket) -> bool:
    """Whether a message waits unread on ``sock``."""
    return bool(int(sock.getsockopt(_EVENTS)) & _POLLIN)


def recv_ready(sock: zmq.Socket) -> list[Any] | None:
    """Receive a message from a socket a poll found readable (None if, after all, none
    waits): no check first, which would cost as much as the receive."""
    try:
        return _with_rest(sock, sock.recv(_NOBLOCK, copy=False))
    except zmq.Again:
        return None


def _with_rest(sock: zmq.Socket, frame: Any) -> list[Any]:
    """A message's first frame and the rest of its frames (there already)."""
    frames = [frame]
    while frame.more:
        frame = sock.recv(0, copy=False)
        frames.append(frame)
    return frames


def drain(
    sock: zmq.Socket,
    first: list[Any] | None,
    handle: Callable[[list[Any]], Any],
    limit: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Handle ``first`` (a message received already), then each message waiting on the
    socket: at most ``limit`` in all, and no more once ``stop()`` is true. A message is
    received only to be handled, so a turn that ends loses none."""
    frames, n = first, 0
    while frames is not None:
        handle(frames)
        n += 1
        if n == limit or (stop is not None and stop()):
            return
        frames = recv_frames(sock, block=False)


def encode(obj: Any) -> bytes:
    """Encode a plain value (dicts, lists, str, numbers, bytes) as msgpack."""
    return _encode(obj)


@functools.lru_cache(maxsize=16)
def error_content(ename: str, evalue: str) -> bytes:
    """The content of an error the controller or a client raises itself (no traceback),
    encoded once for the many requests one cause fails together."""
    return _encode({"ename": ename, "evalue": evalue, "traceback": ""})


def decode(data: Frame) -> Any:
    """Decode msgpack bytes produced by :func:`encode`."""
    return _unpack(bytes(buffer_of(data)))
