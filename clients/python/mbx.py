"""mbx: a pure-Python client for mbxd, the CXL mailbox broker.

Standard library only (socket, struct). It speaks the wire protocol of
include/mbx/proto.h and docs/protocol.md, version 1, and offers what libmbx
offers: hello (on connect), devices, submit, explain, events, metrics and
watch. Every frame from the daemon is checked as strictly as libmbx checks
it; a malformed frame, an ERROR or a lost connection raises and makes the
client unusable.

    import mbx
    with mbx.Client() as c:                       # $MBX_SOCKET or /run/mbxd/mbxd.sock
        for d in c.devices():
            print(d.name, d.model, d.state)
        r = c.submit("mem0", 0x4200)              # Get Health Info
        if r.ok and r.cxl_rc == 0:
            print(r.payload.hex())
        print(c.metrics())
"""

import os
import select
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

PROTO_VERSION = 1
DEFAULT_SOCKET = "/run/mbxd/mbxd.sock"
HEADER = struct.Struct("<IHHI")  # length, type, flags, tag
PAYLOAD_MAX = 1 << 20
BODY_MAX = PAYLOAD_MAX + 4096
SOFTWARE = "mbx.py"

# Message types (enum mbx_msg_type).
MSG_HELLO, MSG_DEVICES, MSG_SUBMIT, MSG_EXPLAIN = 1, 2, 3, 4
MSG_RESULT, MSG_EVENT, MSG_ERROR, MSG_METRICS, MSG_WATCH = 5, 6, 7, 8, 9

# Field sizes, NUL included, as in proto.h: a string must be shorter.
NAME_MAX, TRANSPORT_MAX, KIND_MAX, MODEL_MAX, SERIAL_MAX = 32, 16, 16, 64, 32
REASON_MAX, RULE_MAX, SOURCE_MAX, MESSAGE_MAX, SOFTWARE_MAX = 256, 64, 256, 512, 64
DEVICES_MAX, INNER_MAX = 256, 8

STATUS_NAMES = ("ok", "denied", "invalid", "busy", "timeout", "device-error",
                "no-such-device", "unsupported", "audit-unavailable", "rate-limited",
                "shutting-down", "kernel-owned", "raw-disabled", "cancelled")
CLASS_NAMES = ("read", "log", "config", "data", "security", "fabric", "vendor")
DECISION_NAMES = ("allow", "deny", "invalid")
STATE_NAMES = ("ready", "background", "failed")
EVENT_PROGRESS, EVENT_COMPLETE = 1, 2


class Error(Exception):
    """Any failure of the client."""


class ProtocolError(Error):
    """The daemon sent something malformed, an ERROR, or closed the connection."""


class NoDevice(Error):
    """The daemon has no device by that name."""


@dataclass
class Device:
    name: str
    transport: str
    kind: str
    model: str
    serial: str
    state: str
    bg_percent: int
    bg_opcode: int
    payload_max: int


@dataclass
class Inner:
    opcode: int
    cls: str
    depth: int
    target: int


@dataclass
class Result:
    status: str
    cxl_rc: int
    vendor_status: int
    cls: str
    decision: str
    audit_seq: int
    duration_us: int
    retry_after_ms: int
    rule: str
    source: str
    message: str
    inner: List[Inner] = field(default_factory=list)
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        """The broker passed the command to the device (see cxl_rc for its answer)."""
        return self.status == "ok"


@dataclass
class Event:
    device: str
    opcode: int
    kind: str  # "progress" or "complete"
    percent: int
    cxl_rc: int
    vendor_status: int
    audit_seq: int


class _Reader:
    """Reads one body field by field; any inconsistency is a ProtocolError."""

    def __init__(self, body: bytes, what: str):
        self.b, self.off, self.what = body, 0, what

    def fail(self, why: str):
        raise ProtocolError(f"malformed {self.what} from mbxd: {why}")

    def take(self, n: int) -> bytes:
        if n > len(self.b) - self.off:
            self.fail("truncated")
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def str(self, cap: int) -> str:
        n = self.u16()
        if n >= cap:
            self.fail(f"string of {n} bytes for a field of {cap - 1}")
        raw = self.take(n)
        if b"\0" in raw:
            self.fail("NUL inside a string")
        return raw.decode("utf-8", "replace")

    def payload(self) -> bytes:
        n = self.u32()
        if n > PAYLOAD_MAX:
            self.fail(f"payload of {n} bytes")
        return bytes(self.take(n))

    def end(self):
        if self.off != len(self.b):
            self.fail(f"{len(self.b) - self.off} trailing bytes")


def _name(table, i: int, r: _Reader, what: str) -> str:
    if i >= len(table):
        r.fail(f"unknown {what} {i}")
    return table[i]


def _wstr(s: str, cap: int, what: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) >= cap or b"\0" in b:
        raise ValueError(f"{what} must be under {cap} bytes without NUL")
    return struct.pack("<H", len(b)) + b


def encode_frame(mtype: int, tag: int, body: bytes = b"") -> bytes:
    """One frame: the 12-byte header and the body."""
    if len(body) > BODY_MAX:
        raise ValueError("frame body too large")
    return HEADER.pack(len(body), mtype, 0, tag) + body


def encode_submit(device: str, opcode: int, payload: bytes = b"", reason: Optional[str] = None,
                  timeout_ms: int = 0) -> bytes:
    """The body of SUBMIT and EXPLAIN."""
    if not device:
        raise ValueError("device name is empty")
    if len(payload) > PAYLOAD_MAX:
        raise ValueError("payload over 1 MiB")
    return (_wstr(device, NAME_MAX, "device name") + struct.pack("<HHI", opcode, 0, timeout_ms)
            + _wstr(reason or "", REASON_MAX, "reason") + struct.pack("<I", len(payload))
            + bytes(payload))


def decode_header(raw: bytes) -> Tuple[int, int, int]:
    """(length, type, tag) of a header, checked as the daemon checks it."""
    length, mtype, flags, tag = HEADER.unpack(raw)
    if length > BODY_MAX:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit")
    if not MSG_HELLO <= mtype <= MSG_WATCH or flags != 0:
        raise ProtocolError(f"malformed frame header (type {mtype}, flags {flags:#x})")
    return length, mtype, tag


def decode_hello(body: bytes) -> dict:
    r = _Reader(body, "HELLO")
    version = r.u16()
    if r.u16() != 0:
        r.fail("reserved field not zero")
    h = {"version": version, "max_payload": r.u32(), "max_inflight": r.u32(),
         "software": r.str(SOFTWARE_MAX)}
    r.end()
    return h


def decode_devices(body: bytes) -> List[Device]:
    r = _Reader(body, "DEVICES reply")
    n = r.u16()
    if n > DEVICES_MAX:
        r.fail(f"{n} devices")
    out = []
    for _ in range(n):
        name, transport, kind = r.str(NAME_MAX), r.str(TRANSPORT_MAX), r.str(KIND_MAX)
        model, serial = r.str(MODEL_MAX), r.str(SERIAL_MAX)
        state, pct, op, pmax = r.u8(), r.u8(), r.u16(), r.u32()
        if pct > 100:
            r.fail(f"background percent {pct}")
        out.append(Device(name, transport, kind, model, serial,
                          _name(STATE_NAMES, state, r, "state"), pct, op, pmax))
    r.end()
    return out


def decode_result(body: bytes) -> Result:
    r = _Reader(body, "RESULT")
    status, rc, vendor, cls, dec = r.u16(), r.u16(), r.u16(), r.u8(), r.u8()
    seq, dur, retry = r.u64(), r.u32(), r.u32()
    rule, source, message = r.str(RULE_MAX), r.str(SOURCE_MAX), r.str(MESSAGE_MAX)
    res = Result(_name(STATUS_NAMES, status, r, "status"), rc, vendor,
                 _name(CLASS_NAMES, cls, r, "class"), _name(DECISION_NAMES, dec, r, "decision"),
                 seq, dur, retry, rule, source, message)
    n = r.u16()
    if n > INNER_MAX:
        r.fail(f"{n} tunnel levels")
    for _ in range(n):
        op, c, depth, target = r.u16(), r.u8(), r.u8(), r.u16()
        res.inner.append(Inner(op, _name(CLASS_NAMES, c, r, "class"), depth, target))
    res.payload = r.payload()
    r.end()
    return res


def decode_event(body: bytes) -> Event:
    r = _Reader(body, "EVENT")
    dev, op, kind, pct = r.str(NAME_MAX), r.u16(), r.u8(), r.u8()
    rc, vendor, seq = r.u16(), r.u16(), r.u64()
    if kind not in (EVENT_PROGRESS, EVENT_COMPLETE) or pct > 100:
        r.fail(f"event kind {kind}, percent {pct}")
    r.end()
    return Event(dev, op, "progress" if kind == EVENT_PROGRESS else "complete", pct, rc,
                 vendor, seq)


def decode_metrics(body: bytes) -> str:
    r = _Reader(body, "METRICS reply")
    n = r.u32()
    text = r.take(n)
    if b"\0" in text:
        r.fail("NUL inside the text")
    r.end()
    return text.decode("utf-8", "replace")


def decode_error(body: bytes) -> Tuple[int, str]:
    r = _Reader(body, "ERROR")
    code, msg = r.u16(), r.str(MESSAGE_MAX)
    r.end()
    return code, msg


def socket_path(path: Optional[str] = None) -> str:
    """path, else $MBX_SOCKET, else the default, as libmbx chooses."""
    return path or os.environ.get("MBX_SOCKET") or DEFAULT_SOCKET


class Client:
    """A connection to mbxd. Not thread-safe: one per thread."""

    _REPLY = {MSG_DEVICES: MSG_DEVICES, MSG_METRICS: MSG_METRICS, MSG_SUBMIT: MSG_RESULT,
              MSG_EXPLAIN: MSG_RESULT, MSG_WATCH: MSG_RESULT}

    def __init__(self, path: Optional[str] = None):
        self.path = socket_path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._tag = 0
        self._inflight = {}  # tag -> request type
        self._replies = {}  # tag -> decoded answer
        self._events = deque()  # (tag, Event)
        self._broken: Optional[Error] = None
        try:
            self._sock.connect(self.path)
            self._send(MSG_HELLO, 0, struct.pack("<HH", PROTO_VERSION, PROTO_VERSION)
                       + _wstr(SOFTWARE, SOFTWARE_MAX, "software"))
            length, mtype, _ = self._read_header(None)
            body = self._read_exact(length, None)
            if mtype == MSG_ERROR:
                raise ProtocolError("mbxd: " + decode_error(body)[1])
            if mtype != MSG_HELLO:
                raise ProtocolError(f"mbxd answered HELLO with message type {mtype}")
            self.server = decode_hello(body)
            if self.server["version"] != PROTO_VERSION:
                raise ProtocolError(f"mbxd chose protocol version {self.server['version']}")
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    # Framing.

    def _fail(self, err: Error):
        if self._broken is None:
            self._broken = err
        raise self._broken

    def _send(self, mtype: int, tag: int, body: bytes = b""):
        self._sock.sendall(encode_frame(mtype, tag, body))

    def _read_exact(self, n: int, deadline: Optional[float]) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                    raise TimeoutError("timed out waiting for mbxd")
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ProtocolError("mbxd closed the connection")
            buf += chunk
        return bytes(buf)

    def _read_header(self, deadline: Optional[float]) -> Tuple[int, int, int]:
        return decode_header(self._read_exact(HEADER.size, deadline))

    def _pump(self, deadline: Optional[float] = None):
        """Reads one frame and files it: an answer by its tag, or an event."""
        if self._broken:
            raise self._broken
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self._sock], [], [], left)[0]:
                raise TimeoutError("timed out waiting for mbxd")
        try:
            length, mtype, tag = self._read_header(None)
            body = self._read_exact(length, None)
            if mtype == MSG_ERROR:
                self._fail(ProtocolError("mbxd: " + decode_error(body)[1]))
            if mtype == MSG_EVENT:
                self._events.append((tag, decode_event(body)))
                return
            want = self._inflight.get(tag)
            if want is None or self._REPLY[want] != mtype:
                self._fail(ProtocolError(f"mbxd sent message type {mtype} for tag {tag}, "
                                         "which does not answer a request in flight"))
            decode = {MSG_RESULT: decode_result, MSG_DEVICES: decode_devices,
                      MSG_METRICS: decode_metrics}[mtype]
            self._replies[tag] = decode(body)
            del self._inflight[tag]
        except ProtocolError as e:
            self._fail(e)
        except OSError as e:
            self._fail(ProtocolError(f"connection to mbxd failed: {e}"))

    def _call(self, mtype: int, body: bytes = b""):
        if self._broken:
            raise self._broken
        self._tag = self._tag % 0xffffffff + 1
        while self._tag in self._inflight:
            self._tag = self._tag % 0xffffffff + 1
        tag = self._tag
        self._inflight[tag] = mtype
        self._send(mtype, tag, body)
        while tag not in self._replies:
            self._pump()
        return tag, self._replies.pop(tag)

    # Operations, as libmbx has them.

    def devices(self) -> List[Device]:
        """The daemon's devices."""
        return self._call(MSG_DEVICES)[1]

    def submit(self, device: str, opcode: int, payload: bytes = b"",
               reason: Optional[str] = None, timeout_ms: int = 0) -> Result:
        """Runs one command; the broker's verdict is in status, the device's in cxl_rc."""
        return self._call(MSG_SUBMIT, encode_submit(device, opcode, payload, reason,
                                                    timeout_ms))[1]

    def explain(self, device: str, opcode: int, payload: bytes = b"",
                reason: Optional[str] = None) -> Result:
        """Classifies and decides only: nothing reaches the device."""
        return self._call(MSG_EXPLAIN, encode_submit(device, opcode, payload, reason))[1]

    def metrics(self) -> str:
        """The daemon's counters in the Prometheus text format."""
        return self._call(MSG_METRICS)[1]

    def watch(self, device: str) -> int:
        """Follows device's background operations; returns the tag its events carry."""
        tag, r = self._call(MSG_WATCH, _wstr(device, NAME_MAX, "device name"))
        if r.status == "no-such-device":
            raise NoDevice(r.message)
        if r.status != "ok":
            raise Error(r.message)
        return tag

    def next_event(self, timeout: Optional[float] = None) -> Tuple[int, Event]:
        """The next background EVENT as (tag, event); TimeoutError after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            self._pump(deadline)
        return self._events.popleft()

    def events(self, timeout: Optional[float] = None):
        """Iterates over EVENTs until none comes within timeout (None: forever)."""
        while True:
            try:
                yield self.next_event(timeout)
            except TimeoutError:
                return
