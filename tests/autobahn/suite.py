#!/usr/bin/env python3
"""rtws WebSocket conformance suite (RFC 6455), modelled on the Autobahn case list.

Two modes:

  suite.py client ws://127.0.0.1:PORT/      test a WebSocket *server* (echo server)
  suite.py server --port 0 [--run CMD...]    play a fuzzing server and test a
                                             WebSocket *client* (Autobahn protocol:
                                             /getCaseCount, /runCase, /updateReports)

Standard library only.  See README.md next to this file for the verdict rules.
"""

import argparse
import base64
import fnmatch
import hashlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

OK, INFO, NONSTRICT, FAILED = "OK", "INFO", "NON-STRICT", "FAILED"
SEVERITY = {OK: 0, INFO: 1, NONSTRICT: 2, FAILED: 3}

# Largest frame the suite will accept from a peer (our biggest message is 16 MiB).
MAX_PEER_FRAME = 64 << 20
# After the closing handshake, how long a server under test gets to close TCP.
TCP_CLOSE_GRACE = 2.0

SECTIONS = {
    1: "Framing (text and binary messages)",
    2: "Pings and pongs",
    3: "Reserved bits",
    4: "Reserved opcodes",
    5: "Fragmentation",
    6: "UTF-8 handling",
    7: "Close handling",
    8: "Masking",
    9: "Limits and performance",
    10: "Automatic fragmentation",
    11: "Opening handshake",
    12: "Compression: payloads (permessage-deflate)",
    13: "Compression: parameters (permessage-deflate)",
}


# ---------------------------------------------------------------------------
# Helpers


def accept_key(key):
    """Sec-WebSocket-Accept value for a Sec-WebSocket-Key value (str or bytes)."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key.strip() + GUID).digest()).decode("ascii")


def apply_mask(key, data):
    """XOR data with the 4-byte key repeated; done on big integers for speed."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=False, key=None):
    first = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mbit | 127, n)
    if not mask:
        return head + payload
    if key is None:
        key = os.urandom(4)
    return head + key + apply_mask(key, payload)


def utf8_ok(data):
    try:
        data.decode("utf-8", "strict")
        return True
    except UnicodeDecodeError:
        return False


def close_code_sendable(code):
    """Close codes an endpoint may put on the wire (RFC 6455 7.4 + IANA registry)."""
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


def text_payload(n):
    """n bytes of valid UTF-8 mixing 1-4 byte sequences (a 16-byte period)."""
    unit = "abcd\u00fc\u20ac\U0001D11Exyz".encode("utf-8")
    data = (unit * (n // len(unit) + 1))[:n]
    while not utf8_ok(data):
        data = data[:-1]
    return data + b"*" * (n - len(data))


def binary_payload(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def describe(ev):
    kind = ev[0]
    if kind in ("text", "binary", "ping", "pong"):
        data = ev[1]
        shown = data[:24]
        more = "..." if len(data) > 24 else ""
        return "%s(%d bytes %r%s)" % (kind, len(data), shown, more)
    if kind == "close":
        return "close(code=%s)" % (ev[1],)
    return kind


def http_head_split(buf):
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None, buf
    return bytes(buf[:i]), buf[i + 4:]


def parse_http_head(head):
    """Return (first_line, [(lower_name, value), ...]) of an HTTP head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def header(headers, name):
    vals = [v for (n, v) in headers if n == name]
    return ", ".join(vals) if vals else None


def has_token(value, token):
    if value is None:
        return False
    return token.lower() in [t.strip().lower() for t in value.split(",")]


class CaseTimeout(Exception):
    pass


class F:
    """One frame to send; mask=None means 'as the suite's role requires'."""

    __slots__ = ("op", "payload", "fin", "rsv", "mask")

    def __init__(self, op, payload=b"", fin=True, rsv=0, mask=None):
        self.op, self.payload, self.fin, self.rsv, self.mask = op, payload, fin, rsv, mask


def fragments(op, payload, size):
    """Split a message into F frames of at most `size` bytes (at least one frame)."""
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for i, p in enumerate(parts):
        out.append(F(op if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1)))
    return out


def split_at(op, payload, cuts):
    """Split a message at the given byte offsets into F frames."""
    bounds = [0] + list(cuts) + [len(payload)]
    parts = [payload[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
    return [F(op if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1)) for i, p in enumerate(parts)]


# ---------------------------------------------------------------------------
# The connection driver used by every case


class Tester:
    """Drives one connection.

    peer_role is the role of the implementation under test: 'server' (the suite
    is a client and masks its frames) or 'client' (the suite is a server).
    """

    def __init__(self, sock, peer_role, timeout, initial=b""):
        self.sock = sock
        sock.setblocking(False)
        self.peer_role = peer_role
        self.mask_out = peer_role == "server"
        self.peer_masks = peer_role == "client"
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.buf = bytearray(initial)
        self.ws_open = False
        self.events = []
        self.app = []          # text/binary/pong events, in arrival order
        self.eof = False
        self.reset = False
        self.wclosed = False
        self.close_sent = False
        self.close_rcvd = None  # (code or None, reason bytes) once the peer's close arrived
        self.violated = False
        self.frag = None
        self.pending_pongs = []
        self.verdict = OK
        self.notes = []
        self.sock_closed = False
        self.pmd = None        # Pmd once permessage-deflate is agreed

    # -- verdict bookkeeping
    def mark(self, verdict, note):
        if SEVERITY[verdict] > SEVERITY[self.verdict]:
            self.verdict = verdict
        if note and note not in self.notes:
            self.notes.append(note)

    def fail(self, note):
        self.mark(FAILED, note)

    def nonstrict(self, note):
        self.mark(NONSTRICT, note)

    def violation(self, note):
        self.violated = True
        self.fail("peer protocol violation: " + note)

    # -- low level I/O
    def _read_once(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
            self.reset = True
        if not chunk:
            self.eof = True
            self.events.append(("eof",))
            return
        self.buf += chunk
        if self.ws_open:
            self._parse()

    def _send_some(self, data):
        """Write all of data while reading whatever the peer sends meanwhile."""
        mv = memoryview(data)
        off = 0
        while off < len(mv):
            if self.wclosed:
                return False
            rem = self.deadline - time.monotonic()
            if rem <= 0:
                raise CaseTimeout("timed out while sending (peer not reading?)")
            rlist = [] if self.eof else [self.sock]
            r, w, _ = select.select(rlist, [self.sock], [], min(rem, 0.5))
            if r:
                self._read_once()
            if w:
                try:
                    off += self.sock.send(mv[off:off + (1 << 20)])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    self.wclosed = True
                    return False
        return True

    def write(self, data, chop=None, delay=0.0):
        if not chop:
            return self._send_some(data)
        for i in range(0, len(data), chop):
            if not self._send_some(data[i:i + chop]):
                return False
            if delay:
                self.pause(delay)
        return True

    def pump(self, until=None, timeout=None, hard=False):
        """Read and process input until until() is true, EOF, or the time is up.

        The wait ends at the case deadline unless hard=True (used for the short
        grace periods after a case's main part)."""
        now = time.monotonic()
        end = now + timeout if timeout is not None else self.deadline
        if not hard:
            end = min(end, self.deadline)
        while True:
            self._flush_pongs()
            if until is not None and until():
                return True
            if self.eof:
                return until is not None and until()
            rem = end - time.monotonic()
            if rem <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], rem)
            if r:
                self._read_once()

    def pause(self, seconds):
        self.pump(None, seconds)

    def _flush_pongs(self):
        while self.pending_pongs and not self.close_sent and not self.wclosed:
            self._send_some(self.frame(F(OP_PONG, self.pending_pongs.pop(0))))

    # -- frames out
    def frame(self, f):
        mask = self.mask_out if f.mask is None else f.mask
        return build_frame(f.op, f.payload, f.fin, f.rsv, mask)

    def send_frames(self, frames, mode="single", delay=0.0):
        """mode: 'single' (one write), 'frame' (a write per frame, delay between),
        'octet' (one byte per write, delay between), or an int chop size."""
        for f in frames:
            if f.op == OP_CLOSE:
                self.close_sent = True
        if mode == "frame":
            for f in frames:
                if not self.write(self.frame(f)):
                    return False
                if delay:
                    self.pause(delay)
            return True
        data = b"".join(self.frame(f) for f in frames)
        if mode == "single":
            return self.write(data)
        if mode == "octet":
            return self.write(data, chop=1, delay=delay)
        return self.write(data, chop=int(mode), delay=delay)

    def send(self, op, payload=b"", fin=True, rsv=0, mask=None):
        return self.send_frames([F(op, payload, fin, rsv, mask)])

    def send_close(self, code=1000, reason=b"", raw=None):
        payload = raw if raw is not None else (b"" if code is None else struct.pack("!H", code) + reason)
        self.close_sent = True
        return self.write(self.frame(F(OP_CLOSE, payload)))

    # -- frames in
    def _parse(self):
        b = self.buf
        while len(b) >= 2 and not self.violated:
            b0, b1 = b[0], b[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(b) < 4:
                    return
                n = struct.unpack_from("!H", b, 2)[0]
                pos = 4
            elif n == 127:
                if len(b) < 10:
                    return
                n = struct.unpack_from("!Q", b, 2)[0]
                pos = 10
            if n > MAX_PEER_FRAME:
                self.violation("frame length %d is absurd" % n)
                b.clear()
                return
            masked = bool(b1 & 0x80)
            key = None
            if masked:
                if len(b) < pos + 4:
                    return
                key = bytes(b[pos:pos + 4])
                pos += 4
            if len(b) < pos + n:
                return
            payload = bytes(b[pos:pos + n])
            del b[:pos + n]
            if masked:
                payload = apply_mask(key, payload)
            self._frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)

    def _frame(self, fin, rsv, op, masked, payload):
        if self.close_rcvd is not None:
            self.violation("frame (opcode %d) after the peer's close frame" % op)
            return
        if masked != self.peer_masks:
            self.violation("%s sent a%s frame" % (self.peer_role, " masked" if masked else "n unmasked"))
            return
        if rsv == 4 and self.pmd is not None and op in (OP_TEXT, OP_BINARY):
            pass  # RFC 7692 §6: a compressed message
        elif rsv:
            self.violation("RSV bits %d set %s" % (rsv, "on a frame that may not carry them"
                                                    if self.pmd is not None else "without a negotiated extension"))
            return
        if op >= 8:
            if op not in (OP_CLOSE, OP_PING, OP_PONG):
                self.violation("reserved control opcode %d" % op)
            elif not fin:
                self.violation("fragmented control frame")
            elif len(payload) > 125:
                self.violation("control frame with %d-byte payload" % len(payload))
            elif op == OP_CLOSE:
                code, reason = None, b""
                if len(payload) == 1:
                    self.violation("close frame with 1-byte payload")
                    return
                if len(payload) >= 2:
                    code = struct.unpack("!H", payload[:2])[0]
                    reason = payload[2:]
                    if not close_code_sendable(code):
                        self.violation("close frame with code %d, which must not be sent" % code)
                    if not utf8_ok(reason):
                        self.violation("close reason is not valid UTF-8")
                self.close_rcvd = (code, reason)
                self.events.append(("close", code, reason))
            elif op == OP_PING:
                self.events.append(("ping", payload))
                self.pending_pongs.append(payload)
            else:
                ev = ("pong", payload)
                self.events.append(ev)
                self.app.append(ev)
            return
        if op == OP_CONT:
            if self.frag is None:
                self.violation("continuation frame with no message in progress")
                return
            self.frag[1].append(payload)
        elif op in (OP_TEXT, OP_BINARY):
            if self.frag is not None:
                self.violation("new data frame while a fragmented message is in progress")
                return
            self.frag = [op, [payload], rsv == 4]
        else:
            self.violation("reserved data opcode %d" % op)
            return
        if fin:
            op0, parts, compressed = self.frag
            self.frag = None
            data = b"".join(parts)
            if compressed:
                try:
                    data = self.pmd.decompress(data)
                except zlib.error as e:
                    self.violation("compressed message does not inflate within the agreed window"
                                   " and takeover: %s" % e)
                    return
            if op0 == OP_TEXT and not utf8_ok(data):
                self.violation("text message that is not valid UTF-8")
                return
            ev = ("text" if op0 == OP_TEXT else "binary", data)
            self.events.append(ev)
            self.app.append(ev)

    # -- expectations
    def done_reading(self):
        return self.close_rcvd is not None or self.violated

    def expect(self, expected):
        """Wait for the given app events (echoes/pongs) in order."""
        n = len(expected)
        self.expected_count = n
        self.pump(lambda: len(self.app) >= n or self.done_reading())
        got = self.app
        for i, exp in enumerate(expected):
            if i >= len(got):
                why = "timeout"
                if self.close_rcvd is not None:
                    why = "peer sent close %s" % (self.close_rcvd[0],)
                elif self.eof:
                    why = "peer closed TCP"
                self.fail("missing %s (got %d of %d expected events; %s)" % (describe(exp), len(got), n, why))
                return False
            if got[i] != exp:
                self.fail("event %d: expected %s, got %s" % (i + 1, describe(exp), describe(got[i])))
                return False
        return True

    def _extra_events(self, allowed):
        if len(self.app) > allowed:
            self.fail("unexpected %s" % describe(self.app[allowed]))

    def finish_tcp(self):
        """After the closing handshake: check who closes TCP, then close."""
        if self.peer_role == "server":
            if not self.eof:
                self.pump(lambda: False, TCP_CLOSE_GRACE, hard=True)
            if not self.eof:
                self.nonstrict("server did not close TCP within %.0f s after the closing handshake" % TCP_CLOSE_GRACE)
        else:
            # We are the server: close TCP first, then give the client time to see EOF.
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.pump(lambda: False, 1.0, hard=True)
        self.shut()

    def shut(self):
        if not self.sock_closed:
            self.sock_closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def reply_close(self):
        if self.close_sent:
            return
        code = self.close_rcvd[0] if self.close_rcvd else None
        if code is None:
            self.send_close(None)
        else:
            self.send_close(code if close_code_sendable(code) else 1000)

    def close_normal(self, code=1000, reason=b"", accept=None, empty_ok=False, raw=None):
        """Start (if not yet) the closing handshake and check the peer's reply."""
        allowed = getattr(self, "expected_count", len(self.app))
        if self.close_rcvd is None and not self.violated:
            if not self.close_sent:
                self.send_close(code, reason, raw)
            self.pump(lambda: self.done_reading())
        if self.violated:
            self.shut()
            return
        self._extra_events(allowed)
        if self.close_rcvd is None:
            if self.eof:
                self.fail("peer closed TCP without replying to the close frame")
            else:
                self.fail("no close frame from the peer within %.0f s" % self.timeout)
            self.shut()
            return
        rcode = self.close_rcvd[0]
        accept = accept if accept is not None else (code,)
        if rcode is None and not empty_ok:
            self.fail("close reply without status code, expected %s" % "/".join(map(str, accept)))
        elif rcode is not None and rcode not in accept:
            self.fail("close reply with code %d, expected %s" % (rcode, "/".join(map(str, accept))))
        self.reply_close()
        self.finish_tcp()

    def expect_fail(self, codes=(1002,), before=()):
        """The peer must fail the connection: close with one of codes (a TCP
        drop without close frame is NON-STRICT); `before` are the echoes/pongs
        expected for the valid data sent ahead of the violation."""
        before = list(before)
        self.pump(lambda: self.done_reading())
        if self.violated:
            self.shut()
            return
        got = self.app
        for i, ev in enumerate(got):
            if i >= len(before) or ev != before[i]:
                self.fail("unexpected %s before the connection was failed" % describe(ev))
                break
        else:
            if len(got) < len(before):
                self.nonstrict("no %s for the valid data ahead of the violation" % describe(before[len(got)]))
        wanted = "/".join(map(str, codes))
        if self.close_rcvd is not None:
            code = self.close_rcvd[0]
            if code not in codes:
                self.fail("peer closed with code %s, expected %s" % (code, wanted))
            self.reply_close()
            self.finish_tcp()
        elif self.eof:
            self.nonstrict("peer dropped TCP without a close frame (expected %s)" % wanted)
            self.shut()
        else:
            self.fail("peer did not fail the connection within %.0f s (expected close %s)" % (self.timeout, wanted))
            self.shut()

    # -- HTTP level (handshake cases)
    def read_http_head(self, timeout=None):
        """Read an HTTP head from the raw stream; the rest stays in the buffer."""
        self.pump(lambda: b"\r\n\r\n" in self.buf or len(self.buf) > 65536, timeout)
        head, rest = http_head_split(self.buf)
        if head is None:
            return None
        self.buf = bytearray(rest)
        return head

    def open_ws(self):
        self.ws_open = True
        self._parse()


# ---------------------------------------------------------------------------
# Case registry

CASES = []


class Case:
    def __init__(self, cid, desc, run, roles, timeout, info, kind):
        self.id, self.desc, self.run = cid, desc, run
        self.roles, self.timeout, self.info, self.kind = roles, timeout, info, kind
        self.key = tuple(int(x) for x in cid.split("."))

    @property
    def section(self):
        return self.key[0]


def add(cid, desc, run, roles=("server", "client"), timeout=6.0, info=False, kind="ws"):
    CASES.append(Case(cid, desc, run, roles, timeout, info, kind))


def echo_case(frames, expected, mode="single", delay=0.0):
    def run(t):
        t.send_frames(frames, mode, delay)
        if t.expect(expected):
            t.close_normal()
        else:
            t.shut()
    return run


def fail_case(frames, codes=(1002,), before=(), mode="single", delay=0.0):
    def run(t):
        t.send_frames(frames, mode, delay)
        t.expect_fail(codes, before)
    return run


def msg_frames(op, payload):
    return [F(op, payload)]


# -- Section 1: plain text and binary messages
def _section1():
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for sub, (op, kind, gen) in enumerate([(OP_TEXT, "text", lambda n: b"*" * n),
                                           (OP_BINARY, "binary", lambda n: b"\xfe" * n)], start=1):
        for i, n in enumerate(sizes, start=1):
            p = gen(n)
            add("1.%d.%d" % (sub, i), "%s message, payload length %d" % (kind, n),
                echo_case([F(op, p)], [(kind, p)]))
        p = gen(65536)
        add("1.%d.8" % sub, "%s message, payload length 65536, written in chops of 997 bytes" % kind,
            echo_case([F(op, p)], [(kind, p)], mode=997))


# -- Section 2: pings and pongs
def _ten_pings(mode, delay):
    """As Autobahn 2.10/2.11: one pong per ping, same payloads, in order.
    RFC 6455 5.5.3 would allow answering only the latest, but every widely
    used peer answers each ping, and clients that time each ping rely on it."""
    def run(t):
        payloads = [str(i).encode() for i in range(10)]
        t.send_frames([F(OP_PING, p) for p in payloads], mode, delay)
        t.expected_count = 10
        t.pump(lambda: len(t.app) >= 10 or (t.app and t.app[-1] == ("pong", payloads[-1]))
               or t.done_reading())
        if t.violated:
            return t.shut()
        pongs = [e[1] for e in t.app if e[0] == "pong"]
        others = [e for e in t.app if e[0] != "pong"]
        if others:
            t.fail("unexpected %s" % describe(others[0]))
        if pongs != payloads:
            t.fail("pongs %r, expected one per ping in order %r" % (pongs, payloads))
            return t.shut()
        t.close_normal()
    return run


def _section2():
    add("2.1", "ping without payload", echo_case([F(OP_PING)], [("pong", b"")]))
    add("2.2", "ping with small text payload",
        echo_case([F(OP_PING, b"Hello, world!")], [("pong", b"Hello, world!")]))
    bp = bytes([0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF])
    add("2.3", "ping with small binary payload", echo_case([F(OP_PING, bp)], [("pong", bp)]))
    p125 = binary_payload(125)
    add("2.4", "ping with 125-byte binary payload", echo_case([F(OP_PING, p125)], [("pong", p125)]))
    add("2.5", "ping with 126-byte payload (control frame too long) -> fail 1002",
        fail_case([F(OP_PING, binary_payload(126))]))
    add("2.6", "ping with 125-byte payload written in 1-byte chops",
        echo_case([F(OP_PING, p125)], [("pong", p125)], mode="octet", delay=0.001))
    add("2.7", "unsolicited pong without payload is ignored", echo_case([F(OP_PONG)], []))
    add("2.8", "unsolicited pong with payload is ignored",
        echo_case([F(OP_PONG, b"unsolicited pong payload")], []))
    add("2.9", "unsolicited pong, then ping: only the ping is answered",
        echo_case([F(OP_PONG, b"unsolicited"), F(OP_PING, b"solicited")], [("pong", b"solicited")]))
    add("2.10", "10 pings in a row", _ten_pings("single", 0.0))
    add("2.11", "10 pings in a row, written in 1-byte chops", _ten_pings("octet", 0.0005))


# -- Section 3: reserved bits
def _section3():
    hello = b"Hello, world!"
    add("3.1", "text message with RSV1 set -> fail 1002", fail_case([F(OP_TEXT, hello, rsv=4)]))
    add("3.2", "text, then text with RSV2 set, then ping -> echo, then fail 1002",
        fail_case([F(OP_TEXT, hello), F(OP_TEXT, hello, rsv=2), F(OP_PING)], before=[("text", hello)]))
    add("3.3", "as 3.2 with RSV1+RSV2, a write per frame",
        fail_case([F(OP_TEXT, hello), F(OP_TEXT, hello, rsv=6), F(OP_PING)], before=[("text", hello)],
                  mode="frame", delay=0.05))
    add("3.4", "as 3.2 with RSV3, written in 1-byte chops",
        fail_case([F(OP_TEXT, hello), F(OP_TEXT, hello, rsv=1), F(OP_PING)], before=[("text", hello)],
                  mode="octet", delay=0.001))
    add("3.5", "binary message with RSV1+RSV3 set -> fail 1002",
        fail_case([F(OP_BINARY, b"\x00\xff\xfe\xfd", rsv=5)]))
    add("3.6", "ping with RSV2+RSV3 set -> fail 1002, no pong", fail_case([F(OP_PING, hello, rsv=3)]))
    add("3.7", "close frame with all RSV bits set -> fail 1002",
        fail_case([F(OP_CLOSE, struct.pack("!H", 1000), rsv=7)]))


# -- Section 4: reserved opcodes
def _section4():
    hello = b"Hello, world!"
    for sub, ops in ((1, (3, 4, 5, 6, 7)), (2, (0xB, 0xC, 0xD, 0xE, 0xF))):
        kind = "non-control" if sub == 1 else "control"
        o1, o2, o3, o4, o5 = ops
        add("4.%d.1" % sub, "reserved %s opcode %d, empty payload -> fail 1002" % (kind, o1),
            fail_case([F(o1)]))
        add("4.%d.2" % sub, "reserved %s opcode %d with payload -> fail 1002" % (kind, o2),
            fail_case([F(o2, b"reserved opcode")]))
        add("4.%d.3" % sub, "text, reserved opcode %d, ping -> echo then fail 1002" % o3,
            fail_case([F(OP_TEXT, hello), F(o3), F(OP_PING)], before=[("text", hello)]))
        add("4.%d.4" % sub, "text, reserved opcode %d with payload, ping, a write per frame" % o4,
            fail_case([F(OP_TEXT, hello), F(o4, b"reserved"), F(OP_PING)], before=[("text", hello)],
                      mode="frame", delay=0.05))
        add("4.%d.5" % sub, "text, reserved opcode %d with payload, ping, in 1-byte chops" % o5,
            fail_case([F(OP_TEXT, hello), F(o5, b"reserved"), F(OP_PING)], before=[("text", hello)],
                      mode="octet", delay=0.001))


# -- Section 5: fragmentation
def _section5():
    a, b = b"fragment1", b"fragment2"
    two = [F(OP_TEXT, a, fin=False), F(OP_CONT, b)]
    add("5.1", "ping fragmented into 2 frames -> fail 1002",
        fail_case([F(OP_PING, a, fin=False), F(OP_CONT, b)]))
    add("5.2", "pong fragmented into 2 frames -> fail 1002",
        fail_case([F(OP_PONG, a, fin=False), F(OP_CONT, b)]))
    add("5.3", "text message fragmented in 2 frames", echo_case(two, [("text", a + b)]))
    add("5.4", "text message fragmented in 2 frames, a write per frame with pause",
        echo_case(two, [("text", a + b)], mode="frame", delay=0.1))
    add("5.5", "text message fragmented in 2 frames, written in 1-byte chops",
        echo_case(two, [("text", a + b)], mode="octet", delay=0.001))
    with_ping = [F(OP_TEXT, a, fin=False), F(OP_PING, b"pongme!"), F(OP_CONT, b)]
    exp = [("pong", b"pongme!"), ("text", a + b)]
    add("5.6", "text in 2 frames with a ping in between", echo_case(with_ping, exp))
    add("5.7", "as 5.6, a write per frame with pause", echo_case(with_ping, exp, mode="frame", delay=0.1))
    add("5.8", "as 5.6, written in 1-byte chops", echo_case(with_ping, exp, mode="octet", delay=0.001))
    for base, fin, what in ((9, True, "FIN set"), (12, False, "FIN clear")):
        frames = [F(OP_CONT, b"non-continuation payload", fin=fin), F(OP_TEXT, b"Hello, world!")]
        for j, (mode, delay, how) in enumerate((("single", 0, "one write"), ("frame", 0.05, "a write per frame"),
                                                 ("octet", 0.001, "1-byte chops"))):
            add("5.%d" % (base + j),
                "continuation (%s) with nothing to continue, then text -> fail 1002 (%s)" % (what, how),
                fail_case(frames, mode=mode, delay=delay))
    add("5.15", "complete fragmented text, then continuation with nothing to continue -> echo, fail 1002",
        fail_case(two + [F(OP_CONT, b"fragment3", fin=False), F(OP_CONT, b"fragment4")],
                  before=[("text", a + b)]))
    add("5.16", "continuation(no FIN), text, continuation(FIN), twice -> fail 1002",
        fail_case([F(OP_CONT, a, fin=False), F(OP_TEXT, b), F(OP_CONT, b"x")] * 2))
    add("5.17", "continuation(FIN), text, continuation(FIN), twice -> fail 1002",
        fail_case([F(OP_CONT, a), F(OP_TEXT, b), F(OP_CONT, b"x")] * 2))
    add("5.18", "text start (no FIN), then a new text frame instead of a continuation -> fail 1002",
        fail_case([F(OP_TEXT, a, fin=False), F(OP_TEXT, b)]))
    five = [F(OP_TEXT, b"frag1", fin=False), F(OP_CONT, b"frag2", fin=False), F(OP_PING, b"pongme 1!"),
            F(OP_CONT, b"frag3", fin=False), F(OP_PING, b"pongme 2!"), F(OP_CONT, b"frag4", fin=False),
            F(OP_CONT, b"frag5")]
    exp5 = [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), ("text", b"frag1frag2frag3frag4frag5")]
    add("5.19", "text in 5 frames with 2 pings in between, a write per frame with pauses",
        echo_case(five, exp5, mode="frame", delay=0.2))
    add("5.20", "as 5.19, written in 1-byte chops", echo_case(five, exp5, mode="octet", delay=0.001))
    bin3 = binary_payload(300)
    add("5.21", "binary message fragmented in 3 frames",
        echo_case(split_at(OP_BINARY, bin3, [100, 200]), [("binary", bin3)]))
    add("5.22", "close frame with FIN clear (fragmented control frame) -> fail 1002",
        fail_case([F(OP_CLOSE, struct.pack("!H", 1000), fin=False), F(OP_CONT, b"")]))
    add("5.23", "binary start (no FIN), then text frame -> fail 1002",
        fail_case([F(OP_BINARY, a, fin=False), F(OP_TEXT, b)]))
    # ten pings between eleven fragments: one pong per ping, in order, then the echo
    ten = [F(OP_TEXT, b"a", fin=False)]
    for i in range(10):
        ten += [F(OP_PING, str(i).encode()), F(OP_CONT, b"b", fin=(i == 9))]
    exp10 = [("pong", str(i).encode()) for i in range(10)] + [("text", b"a" + b"b" * 10)]
    add("5.24", "text in 11 frames with 10 pings in between, one write: 10 pongs in order",
        echo_case(ten, exp10))
    add("5.25", "as 5.24, written in 1-byte chops", echo_case(ten, exp10, mode="octet", delay=0.0005))


# -- Section 6: UTF-8
KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode("utf-8")


def utf8_case(payload, frames=None, mode="single", delay=0.0):
    frames = frames if frames is not None else [F(OP_TEXT, payload)]
    if utf8_ok(payload):
        return echo_case(frames, [("text", payload)], mode, delay)
    return fail_case(frames, codes=(1007,), mode=mode, delay=delay)


def fail_fast(parts, whole_frame):
    """6.4.x: text message with invalid UTF-8 in the 2nd of 3 parts, pauses in
    between.  A strict peer fails before the 3rd part is sent."""
    def run(t):
        p1, p2, p3 = parts
        if whole_frame:
            data = t.frame(F(OP_TEXT, p1 + p2 + p3))
            h = len(data) - len(p1 + p2 + p3)
            chunks = [data[:h + len(p1)], data[h + len(p1):h + len(p1) + len(p2)], data[h + len(p1) + len(p2):]]
        else:
            chunks = [t.frame(F(OP_TEXT, p1, fin=False)), t.frame(F(OP_CONT, p2, fin=False)),
                      t.frame(F(OP_CONT, p3))]
        t.write(chunks[0])
        t.pump(lambda: t.done_reading(), 0.5)
        early_first = t.close_rcvd is not None or t.eof
        if not early_first:
            t.write(chunks[1])
            t.pump(lambda: t.done_reading(), 1.0)
        early = t.close_rcvd is not None or t.eof
        if not early:
            t.write(chunks[2])
        t.expect_fail((1007,))
        if early_first and t.verdict != FAILED:
            t.fail("peer failed the connection before the invalid part was sent")
        elif not early and t.verdict != FAILED:
            t.nonstrict("failed only after the whole message arrived, not right after the invalid part")
    return run


UTF8_GROUPS = [
    ("6.5", "valid UTF-8 sample", [
        KOSME,
        "Gr\u00fc\u00dfe aus K\u00f6ln".encode(),
        "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, "
        "\u65e5\u672c\u8a9e, \u05e2\u05d1\u05e8\u05d9\u05ea".encode(),
        "\U0001D11E\U0001D122 music, \U0001F642 face".encode(),
        "snowman \u2603 and euro \u20ac".encode()]),
    ("6.7", "first sequence of its length", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]),
    ("6.8", "first 5/6-byte form (invalid)", [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
    ("6.9", "last sequence of its length", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf",
                                            b"\xf7\xbf\xbf\xbf"]),
    ("6.10", "last 5/6-byte form (invalid)", [b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"]),
    ("6.11", "boundary code point", [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf",
                                     b"\xf4\x90\x80\x80"]),
    ("6.12", "unexpected continuation bytes", [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80",
                                               b"\x80\xbf\x80\xbf", b"\x80\xbf\x80\xbf\x80",
                                               b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xc0))]),
    ("6.13", "lonely start bytes followed by space", [
        b"".join(bytes([c, 0x20]) for c in range(lo, hi))
        for lo, hi in ((0xc0, 0xe0), (0xe0, 0xf0), (0xf0, 0xf8), (0xf8, 0xfc), (0xfc, 0xfe))]),
    ("6.14", "sequence with last continuation byte missing", [
        b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
        b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf",
        b"price: 10\xe2\x82", b"clef \xf0\x9d\x84"]),
    ("6.15", "concatenated incomplete sequences", [
        b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"
        b"\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf"]),
    ("6.16", "impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
    ("6.17", "overlong ASCII '/'", [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
                                    b"\xfc\x80\x80\x80\x80\xaf"]),
    ("6.18", "maximum overlong form", [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf",
                                       b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf"]),
    ("6.19", "overlong NUL", [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
                              b"\xfc\x80\x80\x80\x80\x80"]),
    ("6.20", "lone UTF-16 surrogate", [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
                                       b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]),
    ("6.21", "UTF-16 surrogate pair encoded as UTF-8", [
        hi + lo for hi in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf")
        for lo in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]),
    ("6.22", "noncharacter (valid UTF-8)", [
        chr(c).encode() for c in (0xFFFE, 0xFFFF, 0xFDD0, 0xFDEF, 0x1FFFE, 0x1FFFF, 0x2FFFE, 0x10FFFE, 0x10FFFF)]),
    ("6.23", "special valid text", [
        "\ufffd replacement".encode(), "\ufeffBOM first".encode(), b"NUL\x00inside",
        "line\u2028para\u2029sep".encode(), "e\u0301 combining".encode()]),
]


def _section6():
    add("6.1.1", "text message of 3 empty fragments",
        echo_case([F(OP_TEXT, b"", fin=False), F(OP_CONT, b"", fin=False), F(OP_CONT, b"")], [("text", b"")]))
    add("6.1.2", "text message of 3 fragments, first and last empty",
        echo_case([F(OP_TEXT, b"", fin=False), F(OP_CONT, b"middle", fin=False), F(OP_CONT, b"")],
                  [("text", b"middle")]))
    add("6.1.3", "text message of 3 fragments, first two empty",
        echo_case([F(OP_TEXT, b"", fin=False), F(OP_CONT, b"", fin=False), F(OP_CONT, b"last")],
                  [("text", b"last")]))
    mixed = "a\u00e9\u20ac\U0001D11Ez".encode()
    add("6.2.1", "valid UTF-8 (1-4 byte sequences) in one frame", utf8_case(mixed))
    for k in range(1, len(mixed)):
        add("6.2.%d" % (k + 1), "valid UTF-8 split into 2 frames at byte %d" % k,
            utf8_case(mixed, split_at(OP_TEXT, mixed, [k])))
    n = len(mixed) + 1
    add("6.2.%d" % n, "valid UTF-8 sent as 1-byte frames", utf8_case(mixed, fragments(OP_TEXT, mixed, 1)))
    add("6.2.%d" % (n + 1), "valid UTF-8 (kosme) in 1-byte frames, written in 1-byte chops",
        utf8_case(KOSME, fragments(OP_TEXT, KOSME, 1), mode="octet", delay=0.0005))
    bad = [("6.3.1", "invalid UTF-8 (surrogate) in one frame -> 1007", KOSME + b"\xed\xa0\x80edited", None),
           ("6.3.2", "invalid UTF-8 (surrogate) as 1-byte frames -> 1007", KOSME + b"\xed\xa0\x80edited", 1),
           ("6.3.3", "invalid UTF-8 (overlong) as 1-byte frames -> 1007", b"slash \xc0\xaf here", 1),
           ("6.3.4", "invalid UTF-8 (> U+10FFFF) as 1-byte frames -> 1007", KOSME + b"\xf4\x90\x80\x80!", 1),
           ("6.3.5", "text whose last fragment ends mid-sequence, 1-byte frames -> 1007", KOSME + b"\xe2\x82", 1)]
    for cid, desc, p, size in bad:
        add(cid, desc, utf8_case(p, fragments(OP_TEXT, p, size) if size else None))
    bad_cp = (KOSME, b"\xf4\x90\x80\x80", b"edited")
    bad_split = (KOSME + b"\xf4", b"\x90", b"\x80\x80edited")
    add("6.4.1", "fail fast: 3 frames, 2nd frame is an invalid code point -> 1007 before 3rd",
        fail_fast(bad_cp, False), timeout=8.0)
    add("6.4.2", "fail fast: 3 frames, invalid byte pair split across frames -> 1007 before 3rd",
        fail_fast(bad_split, False), timeout=8.0)
    add("6.4.3", "fail fast: one frame in 3 TCP chops, invalid code point in 2nd chop",
        fail_fast(bad_cp, True), timeout=8.0)
    add("6.4.4", "fail fast: one frame in 3 TCP chops, invalid byte pair split across chops",
        fail_fast(bad_split, True), timeout=8.0)
    for gid, gdesc, vectors in UTF8_GROUPS:
        for i, v in enumerate(vectors, start=1):
            verdict = "valid" if utf8_ok(v) else "invalid -> 1007"
            add("%s.%d" % (gid, i), "%s: %s (%s)" % (gdesc, v[:16].hex(" ") + (" .." if len(v) > 16 else ""),
                                                    verdict), utf8_case(v))
    for k in range(1, len(KOSME) + 1):
        p = KOSME[:k]
        add("6.6.%d" % k, "first %d bytes of kosme (%s)" % (k, "valid" if utf8_ok(p) else "invalid -> 1007"),
            utf8_case(p))


# -- Section 7: close handling
def _after_close(extra, info=False):
    def run(t):
        t.expected_count = 0
        t.send_frames([F(OP_CLOSE, struct.pack("!H", 1000))] + extra)
        t.close_normal()
    return run


def _section7():
    hello = b"Hello, world!"

    def c711(t):
        t.send(OP_TEXT, hello)
        if t.expect([("text", hello)]):
            t.close_normal()
        else:
            t.shut()
    add("7.1.1", "text echo, then normal close", c711)
    add("7.1.2", "two close frames in a row: the second is ignored",
        _after_close([F(OP_CLOSE, struct.pack("!H", 1000))]))
    add("7.1.3", "ping after close is not answered", _after_close([F(OP_PING, b"too late")]))
    add("7.1.4", "text after close is not echoed", _after_close([F(OP_TEXT, b"too late")]))

    def c715(t):
        t.expected_count = 0
        t.send_frames([F(OP_TEXT, b"fragment1", fin=False), F(OP_CLOSE, struct.pack("!H", 1000)),
                       F(OP_CONT, b"fragment2")])
        t.close_normal()
    add("7.1.5", "fragmented text started, close, then the final fragment: not echoed", c715)

    def c716(t):
        big = text_payload(256 << 10)
        t.send_frames([F(OP_TEXT, big), F(OP_CLOSE, struct.pack("!H", 1000)), F(OP_PING, b"too late")])
        t.pump(lambda: t.done_reading())
        echoed = [e for e in t.app if e == ("text", big)]
        t.expected_count = len(echoed)
        t.notes.append("echo of the 256 KiB message %s before the close reply" % ("arrived" if echoed else "did not arrive"))
        t.close_normal()
    add("7.1.6", "256 KiB text, close, ping: echo optional, no pong", c716, info=True, timeout=10.0)

    def closer(code=None, reason=b"", raw=None, accept=None, empty_ok=False):
        def run(t):
            t.expected_count = 0
            t.close_normal(code, reason, accept=accept, empty_ok=empty_ok, raw=raw)
        return run

    def close_fail(raw, codes):
        def run(t):
            t.send_close(raw=raw)
            t.expect_fail(codes)
        return run
    add("7.3.1", "close without payload -> close reply (empty or 1000)",
        closer(None, accept=(1000,), empty_ok=True))
    add("7.3.2", "close with 1-byte payload -> fail 1002", close_fail(b"\x03", (1002,)))
    add("7.3.3", "close with code 1000 only", closer(1000))
    add("7.3.4", "close with code 1000 and a short reason", closer(1000, b"Goodbye, world"))
    add("7.3.5", "close with code 1000 and a 123-byte reason (payload 125)", closer(1000, b"r" * 123))
    add("7.3.6", "close with code 1000 and a 124-byte reason (payload 126) -> fail 1002",
        close_fail(struct.pack("!H", 1000) + b"r" * 124, (1002,)))
    add("7.5.1", "close with reason that is invalid UTF-8 -> fail 1007",
        close_fail(struct.pack("!H", 1000) + KOSME + b"\xed\xa0\x80edited", (1007,)))
    add("7.5.2", "close with reason truncated mid-sequence -> fail 1007",
        close_fail(struct.pack("!H", 1000) + KOSME[:-1], (1007,)))
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
    for i, code in enumerate(valid, start=1):
        def run(t, code=code):
            t.expected_count = 0
            t.send_close(code)
            t.pump(lambda: t.done_reading())
            if code in (1012, 1013, 1014) and t.close_rcvd and t.close_rcvd[0] == 1002:
                t.nonstrict("rejected IANA-registered code %d as a protocol error" % code)
                t.reply_close()
                return t.finish_tcp()
            t.close_normal(code, accept=(code, 1000))
        add("7.7.%d" % i, "close with valid code %d -> close reply with %d (or 1000)" % (code, code), run)
    invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999]
    for i, code in enumerate(invalid, start=1):
        add("7.9.%d" % i, "close with invalid code %d -> fail 1002" % code,
            close_fail(struct.pack("!H", code), (1002,)))
    for i, code in enumerate([5000, 65535], start=1):
        add("7.13.%d" % i, "close with out-of-range code %d -> fail 1002" % code,
            close_fail(struct.pack("!H", code) + b"out of range", (1002,)))


# -- Section 8: masking rules
def _section8():
    hello = b"Hello, world!"
    s = ("server",)
    c = ("client",)
    add("8.1.1", "unmasked text frame from the client -> fail 1002",
        fail_case([F(OP_TEXT, hello, mask=False)]), roles=s)
    add("8.1.2", "unmasked ping from the client -> fail 1002, no pong",
        fail_case([F(OP_PING, hello, mask=False)]), roles=s)
    add("8.1.3", "text echo, then unmasked binary frame -> echo, fail 1002",
        fail_case([F(OP_TEXT, hello), F(OP_BINARY, hello, mask=False)], before=[("text", hello)]), roles=s)

    def zero_key(t):
        t.write(build_frame(OP_TEXT, hello, mask=True, key=b"\x00\x00\x00\x00"))
        if t.expect([("text", hello)]):
            t.close_normal()
        else:
            t.shut()
    add("8.1.4", "masked frame with an all-zero masking key is valid", zero_key, roles=s)
    add("8.2.1", "masked text frame from the server -> fail 1002",
        fail_case([F(OP_TEXT, hello, mask=True)]), roles=c)
    add("8.2.2", "masked ping from the server -> fail 1002, no pong",
        fail_case([F(OP_PING, hello, mask=True)]), roles=c)
    add("8.2.3", "text echo, then masked binary frame -> echo, fail 1002",
        fail_case([F(OP_TEXT, hello), F(OP_BINARY, hello, mask=True)], before=[("text", hello)]), roles=c)


# -- Section 9: limits and performance
def _round_trips(op, size, count=1000):
    kind = "text" if op == OP_TEXT else "binary"

    def run(t):
        p = text_payload(size) if op == OP_TEXT else binary_payload(size)
        start = time.monotonic()
        for i in range(count):
            t.send(op, p)
            want = i + 1
            t.pump(lambda: len(t.app) >= want or t.done_reading())
            if len(t.app) < want or t.app[-1] != (kind, p):
                t.expected_count = want
                t.expect([(kind, p)] * want)
                return t.shut()
        t.expected_count = count
        t.notes.append("%d round trips in %.2f s" % (count, time.monotonic() - start))
        t.close_normal()
    return run


def _timed_echo(frames, expected, mode="single"):
    def run(t):
        start = time.monotonic()
        t.send_frames(frames, mode)
        if t.expect(expected):
            t.notes.append("echoed in %.2f s" % (time.monotonic() - start))
            t.close_normal()
        else:
            t.shut()
    return run


def _section9():
    sizes = [64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20]
    frag_sizes = [64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20]
    chops = [64, 128, 256, 512, 1024, 2048]

    def human(n):
        return "%d MiB" % (n >> 20) if n >= 1 << 20 else ("%d KiB" % (n >> 10) if n >= 1024 else "%d B" % n)
    for sub, op, kind, gen in ((1, OP_TEXT, "text", text_payload), (2, OP_BINARY, "binary", binary_payload)):
        for i, n in enumerate(sizes, start=1):
            add("9.%d.%d" % (sub, i), "%s message of %s in one frame" % (kind, human(n)),
                lambda t, n=n, op=op, kind=kind, gen=gen: _timed_echo([F(op, gen(n))], [(kind, gen(n))])(t),
                timeout=30.0)
    for sub, op, kind, gen in ((3, OP_TEXT, "text", text_payload), (4, OP_BINARY, "binary", binary_payload)):
        for i, fs in enumerate(frag_sizes, start=1):
            add("9.%d.%d" % (sub, i), "4 MiB %s message in frames of %s" % (kind, human(fs)),
                lambda t, fs=fs, op=op, kind=kind, gen=gen:
                    _timed_echo(fragments(op, gen(4 << 20), fs), [(kind, gen(4 << 20))])(t),
                timeout=30.0)
    for sub, op, kind, gen in ((5, OP_TEXT, "text", text_payload), (6, OP_BINARY, "binary", binary_payload)):
        for i, ch in enumerate(chops, start=1):
            add("9.%d.%d" % (sub, i), "1 MiB %s message in one frame, written in chops of %d bytes" % (kind, ch),
                lambda t, ch=ch, op=op, kind=kind, gen=gen:
                    _timed_echo([F(op, gen(1 << 20))], [(kind, gen(1 << 20))], mode=ch)(t),
                timeout=30.0)
    for sub, op, kind in ((7, OP_TEXT, "text"), (8, OP_BINARY, "binary")):
        for i, n in enumerate([0, 16, 64, 256, 1024, 4096], start=1):
            add("9.%d.%d" % (sub, i), "1000 %s messages of %d bytes, one round trip each" % (kind, n),
                _round_trips(op, n), timeout=30.0)


# -- Section 10: automatic fragmentation
def _section10():
    t64 = text_payload(64 << 10)
    b1m = binary_payload(1 << 20)
    t1m = text_payload(1 << 20)
    add("10.1.1", "64 KiB text sent in 1300-byte frames", _timed_echo(fragments(OP_TEXT, t64, 1300), [("text", t64)]),
        timeout=20.0)
    add("10.1.2", "1 MiB binary sent in 1300-byte frames",
        _timed_echo(fragments(OP_BINARY, b1m, 1300), [("binary", b1m)]), timeout=20.0)
    add("10.1.3", "1 MiB text in one frame; the peer may fragment its echo as it likes",
        _timed_echo([F(OP_TEXT, t1m)], [("text", t1m)]), timeout=20.0)


# -- Section 11: opening handshake
def _request(path, host, headers, method="GET", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, path, version), "Host: %s" % host] + headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def std_headers(key):
    return ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key,
            "Sec-WebSocket-Version: 13"]


def hs_exchange(t, request, chop=None, delay=0.0):
    t.write(request, chop=chop, delay=delay)
    head = t.read_http_head(5.0)
    if head is None:
        return None, None, None
    first, headers = parse_http_head(head)
    parts = first.split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        status = -1
    return status, headers, first


def check_101(t, status, headers, key, first):
    """Validate a 101 answer; returns True when the connection is open."""
    if status is None:
        t.fail("no HTTP response (connection closed or timeout)")
        return False
    if status != 101:
        t.fail("expected 101, got: %s" % first)
        return False
    if not (header(headers, "upgrade") or "").lower() == "websocket":
        t.fail("101 without 'Upgrade: websocket'")
    if not has_token(header(headers, "connection"), "upgrade"):
        t.fail("101 without 'Connection: Upgrade'")
    if header(headers, "sec-websocket-accept") != accept_key(key):
        t.fail("wrong Sec-WebSocket-Accept %r" % header(headers, "sec-websocket-accept"))
    if header(headers, "sec-websocket-extensions"):
        t.fail("server accepted an extension that was not offered")
    t.open_ws()
    return t.verdict != FAILED


def hs_echo_after(t):
    hello = b"handshake ok"
    t.send(OP_TEXT, hello)
    if t.expect([("text", hello)]):
        t.close_normal()
    else:
        t.shut()


def hs_accept_case(build, chop=None, delay=0.0, extra=None):
    def run(t):
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, first = hs_exchange(t, build(t.ctx, key), chop, delay)
        if check_101(t, status, headers, key, first):
            if extra:
                extra(t, headers)
            hs_echo_after(t)
        else:
            t.shut()
    return run


def hs_reject_case(build, want_version_header=False, accept_101=None):
    """The server must refuse the upgrade: a 4xx answer is OK; a closed
    connection without answer is NON-STRICT; 101 is FAILED unless accept_101
    names a tolerated reason (then NON-STRICT)."""
    def run(t):
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, first = hs_exchange(t, build(t.ctx, key))
        if status is None:
            if t.eof:
                t.nonstrict("connection closed without an HTTP error response")
            else:
                t.fail("no response within 5 s")
        elif status == 101:
            if accept_101:
                t.nonstrict("upgraded (%s)" % accept_101)
                t.open_ws()
                t.expected_count = 0
                t.close_normal()
                return
            t.fail("server upgraded a request it must refuse")
        elif 400 <= status < 500:
            t.notes.append(first)
            if want_version_header:
                versions = [v.strip() for v in (header(headers, "sec-websocket-version") or "").split(",")]
                if "13" not in versions:
                    t.nonstrict("%d without 'Sec-WebSocket-Version: 13' (RFC 6455 4.2.2)" % status)
        else:
            t.nonstrict("refused with %s (expected a 4xx status)" % first)
        t.shut()
    return run


def _section11():
    s = ("server",)

    def std(ctx, key):
        return _request(ctx["path"], ctx["host"], std_headers(key))

    def without(name):
        def build(ctx, key):
            return _request(ctx["path"], ctx["host"],
                            [h for h in std_headers(key) if not h.lower().startswith(name)])
        return build

    def replace(name, line):
        def build(ctx, key):
            return _request(ctx["path"], ctx["host"],
                            [line if h.lower().startswith(name) else h for h in std_headers(key)])
        return build

    add("11.1.1", "valid handshake: 101, correct Sec-WebSocket-Accept, then echo", hs_accept_case(std), roles=s,
        kind="raw")
    add("11.1.2", "request without Upgrade header -> 4xx", hs_reject_case(without("upgrade")), roles=s, kind="raw")
    add("11.1.3", "request without Connection header -> 4xx", hs_reject_case(without("connection")), roles=s,
        kind="raw")
    add("11.1.4", "request without Sec-WebSocket-Key -> 4xx", hs_reject_case(without("sec-websocket-key")),
        roles=s, kind="raw")
    add("11.1.5", "request without Sec-WebSocket-Version -> 4xx",
        hs_reject_case(without("sec-websocket-version")), roles=s, kind="raw")
    add("11.1.6", "Sec-WebSocket-Version: 8 -> 426 with Sec-WebSocket-Version: 13",
        hs_reject_case(replace("sec-websocket-version", "Sec-WebSocket-Version: 8"), True,
                       accept_101="server also speaks the draft version 8"), roles=s, kind="raw")
    add("11.1.7", "Sec-WebSocket-Version: 99 -> 426 with Sec-WebSocket-Version: 13",
        hs_reject_case(replace("sec-websocket-version", "Sec-WebSocket-Version: 99"), True), roles=s, kind="raw")

    def short_key(ctx, key):
        k = base64.b64encode(os.urandom(15)).decode()
        return _request(ctx["path"], ctx["host"],
                        ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + k,
                         "Sec-WebSocket-Version: 13"])
    add("11.1.8", "Sec-WebSocket-Key decoding to 15 bytes -> 4xx", hs_reject_case(short_key), roles=s, kind="raw")
    add("11.1.9", "Sec-WebSocket-Key that is not base64 -> 4xx",
        hs_reject_case(replace("sec-websocket-key", "Sec-WebSocket-Key: not*base64*at*all!!!!==")), roles=s,
        kind="raw")
    add("11.1.10", "POST instead of GET -> 4xx",
        hs_reject_case(lambda ctx, key: _request(ctx["path"], ctx["host"], std_headers(key), method="POST")),
        roles=s, kind="raw")
    add("11.1.11", "HTTP/1.0 request -> 4xx (upgrading anyway is NON-STRICT)",
        hs_reject_case(lambda ctx, key: _request(ctx["path"], ctx["host"], std_headers(key), version="HTTP/1.0"),
                       accept_101="HTTP/1.0 request accepted"), roles=s, kind="raw")
    add("11.1.12", "Upgrade: h2c -> 4xx", hs_reject_case(replace("upgrade", "Upgrade: h2c")), roles=s, kind="raw")
    add("11.1.13", "'Connection: keep-alive, Upgrade' is accepted",
        hs_accept_case(replace("connection", "Connection: keep-alive, Upgrade")), roles=s, kind="raw")

    def odd_case(ctx, key):
        return _request(ctx["path"], ctx["host"], ["uPGRADE: WebSocket", "CONNECTION: upgrade",
                                                   "sec-websocket-key: " + key, "SEC-WEBSOCKET-VERSION: 13"])
    add("11.1.14", "header names and Upgrade/Connection values in odd case are accepted",
        hs_accept_case(odd_case), roles=s, kind="raw")
    add("11.1.15", "request written one byte at a time is accepted", hs_accept_case(std, chop=1, delay=0.001),
        roles=s, kind="raw", timeout=10.0)

    def with_protocol(ctx, key):
        return _request(ctx["path"], ctx["host"], std_headers(key) + ["Sec-WebSocket-Protocol: chat, superchat"])

    def check_protocol(t, headers):
        proto = header(headers, "sec-websocket-protocol")
        if proto is not None and proto not in ("chat", "superchat"):
            t.fail("server selected subprotocol %r that was not offered" % proto)
        t.notes.append("selected subprotocol: %s" % proto)
    add("11.1.16", "subprotocols offered: the answer names none or one of them",
        hs_accept_case(with_protocol, extra=check_protocol), roles=s, kind="raw")

    def pipelined(t):
        key = base64.b64encode(os.urandom(16)).decode()
        hello = b"pipelined with the handshake"
        data = std(t.ctx, key) + build_frame(OP_TEXT, hello, mask=True)
        status, headers, first = hs_exchange(t, data)
        if check_101(t, status, headers, key, first) and t.expect([("text", hello)]):
            t.close_normal()
        else:
            t.shut()
    add("11.1.17", "text frame written together with the request is processed", pipelined, roles=s, kind="raw")
    add("11.1.18", "extra headers (Origin, User-Agent, Cookie) are accepted",
        hs_accept_case(lambda ctx, key: _request(ctx["path"], ctx["host"], std_headers(key) + [
            "Origin: http://127.0.0.1", "User-Agent: rtws-conformance", "Cookie: a=b"])), roles=s, kind="raw")

    # Client role: the suite answers the client's handshake badly (or oddly).
    c = ("client",)

    def response(lines):
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def good_lines(key):
        return ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                "Sec-WebSocket-Accept: " + accept_key(key)]

    def bad_response(make):
        def run(t):
            t.write(make(t.ctx["key"]) + build_frame(OP_TEXT, b"must not be echoed"))
            t.pump(lambda: False, 4.0)
            data = bytes(t.buf)
            if not t.eof:
                t.fail("client kept the connection open for 4 s after an invalid handshake response")
            t.ws_open = True
            t._parse()
            if any(e[0] in ("text", "binary") for e in t.events):
                t.fail("client echoed data after an invalid handshake response")
            elif any(e[0] == "close" for e in t.events):
                t.nonstrict("client sent a close frame although the connection never opened")
            elif data:
                t.fail("client sent %d unexpected bytes" % len(data))
            t.shut()
        return run

    def mutate(drop=None, add_lines=(), status=None, accept=None):
        def make(key):
            lines = good_lines(key)
            if status:
                lines[0] = status
            if accept is not None:
                lines = [("Sec-WebSocket-Accept: " + accept) if l.startswith("Sec-WebSocket-Accept") else l
                         for l in lines]
            if drop:
                lines = [l for l in lines if not l.lower().startswith(drop)]
            return response(lines + list(add_lines))
        return make

    add("11.2.1", "wrong Sec-WebSocket-Accept -> client must not open",
        bad_response(mutate(accept=accept_key("x" * 24))), roles=c, kind="raw", timeout=8.0)
    add("11.2.2", "response without Upgrade header -> client must not open",
        bad_response(mutate(drop="upgrade")), roles=c, kind="raw", timeout=8.0)
    add("11.2.3", "response without Connection header -> client must not open",
        bad_response(mutate(drop="connection")), roles=c, kind="raw", timeout=8.0)
    add("11.2.4", "status 200 instead of 101 -> client must not open",
        bad_response(mutate(status="HTTP/1.1 200 OK")), roles=c, kind="raw", timeout=8.0)
    add("11.2.5", "response without Sec-WebSocket-Accept -> client must not open",
        bad_response(mutate(drop="sec-websocket-accept")), roles=c, kind="raw", timeout=8.0)
    add("11.2.6", "'Upgrade: h2c' in the 101 response -> client must not open",
        bad_response(mutate(drop="upgrade", add_lines=["Upgrade: h2c"])), roles=c, kind="raw", timeout=8.0)
    add("11.2.7", "extension the client did not offer -> client must not open",
        bad_response(mutate(add_lines=["Sec-WebSocket-Extensions: x-rtws-unknown"])), roles=c, kind="raw",
        timeout=8.0)
    add("11.2.8", "subprotocol the client did not offer -> client must not open",
        bad_response(mutate(add_lines=["Sec-WebSocket-Protocol: x-rtws-unknown"])), roles=c, kind="raw",
        timeout=8.0)

    def good_response(make, chop=None, delay=0.0, piggyback=False):
        def run(t):
            hello = b"handshake ok"
            data = make(t.ctx["key"])
            if piggyback:
                data += build_frame(OP_TEXT, hello)
            t.write(data, chop=chop, delay=delay)
            t.open_ws()
            if not piggyback:
                t.send(OP_TEXT, hello)
            if t.expect([("text", hello)]):
                t.close_normal()
            else:
                t.shut()
        return run

    def odd(key):
        return response(["HTTP/1.1 101 Web Socket Protocol Handshake", "uPGRADE: WebSocket",
                         "connection: upgrade", "SEC-WEBSOCKET-ACCEPT: " + accept_key(key),
                         "Server: rtws-conformance", "X-Extra: 1"])
    add("11.2.9", "101 with oddly cased headers and extra headers is accepted", good_response(odd), roles=c,
        kind="raw")
    add("11.2.10", "101 response written one byte at a time is accepted",
        good_response(lambda key: response(good_lines(key)), chop=1, delay=0.001), roles=c, kind="raw",
        timeout=10.0)
    add("11.2.11", "text frame in the same write as the 101 response is processed",
        good_response(lambda key: response(good_lines(key)), piggyback=True), roles=c, kind="raw")


# -- Sections 12 and 13: permessage-deflate (RFC 7692), Python's zlib on our side


class Pmd:
    """One side's view of an agreed permessage-deflate: our compressor (window
    send_bits, kept across messages when send_takeover) and our inflater,
    strict about the peer's agreed window (recv_bits) and takeover."""

    def __init__(self, send_bits=15, send_takeover=True, recv_bits=15, recv_takeover=True):
        self.send_bits, self.send_takeover = max(send_bits, 9), send_takeover
        # zlib reads no window under 9 bits: a peer limited to 8 is read with 9
        self.recv_bits, self.recv_takeover = max(recv_bits, 9), recv_takeover
        self.comp = self.decomp = None

    def compress(self, data):
        if self.comp is None or not self.send_takeover:
            self.comp = zlib.compressobj(6, zlib.DEFLATED, -self.send_bits)
        out = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def decompress(self, data):
        if self.decomp is None or not self.recv_takeover:
            self.decomp = zlib.decompressobj(-self.recv_bits)
        return self.decomp.decompress(data + b"\x00\x00\xff\xff")


def pmd_params(value):
    """The parameters of each element of a Sec-WebSocket-Extensions value:
    [(name, {param: value or True})]; quotes around values are removed."""
    out = []
    for elem in (value or "").split(","):
        parts = [p.strip() for p in elem.split(";")]
        if not parts[0]:
            continue
        params = {}
        for p in parts[1:]:
            k, eq, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"') if eq else True
        out.append((parts[0].lower(), params))
    return out


# (description, what the suite offers as a client, what it answers as a server)
PMD_SPECS = {
    1: ("defaults", "permessage-deflate; client_max_window_bits", "permessage-deflate"),
    2: ("no context takeover both ways",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    3: ("windows of 9 bits both ways",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"),
    4: ("windows of 15 bits, said explicitly",
        "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
        "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"),
    5: ("no context takeover, windows of 9 bits",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=9; client_max_window_bits=9",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=9; client_max_window_bits=9"),
    6: ("no context takeover, windows of 15 bits",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=15; client_max_window_bits=15",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=15; client_max_window_bits=15"),
    7: ("several offers, the first not acceptable / mixed answer",
        "permessage-deflate; x-unknown=1, permessage-deflate; server_max_window_bits=10; "
        "client_max_window_bits",
        "permessage-deflate; server_max_window_bits=12; client_no_context_takeover"),
    8: ("window of 8 bits asked of the server",
        "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=10"),
}


def pmd_client_side(t, offer, answer):
    """The suite is the client: check the server's answer against our offer
    (RFC 7692 §7.1) and set t.pmd. Returns False when the answer is wrong."""
    els = pmd_params(answer)
    if len(els) != 1 or els[0][0] != "permessage-deflate":
        t.fail("expected one permessage-deflate in the answer, got %r" % answer)
        return False
    got = els[0][1]
    offers = [p for n, p in pmd_params(offer) if n == "permessage-deflate" and "x-unknown" not in p]
    o = offers[0]
    for k in got:
        if k not in ("server_no_context_takeover", "client_no_context_takeover",
                     "server_max_window_bits", "client_max_window_bits"):
            t.fail("unknown parameter %s in the answer" % k)
            return False
    if "server_no_context_takeover" in o and "server_no_context_takeover" not in got:
        t.fail("server_no_context_takeover offered but not answered")
        return False
    if "client_max_window_bits" in got and "client_max_window_bits" not in o:
        t.fail("client_max_window_bits answered but not offered")
        return False
    sbits = int(got.get("server_max_window_bits", 15))
    if "server_max_window_bits" in o and ("server_max_window_bits" not in got or
                                          sbits > int(o["server_max_window_bits"])):
        t.fail("server_max_window_bits answered %r for an offer of %s" %
               (got.get("server_max_window_bits"), o["server_max_window_bits"]))
        return False
    cb = o.get("client_max_window_bits")
    cbits = int(got.get("client_max_window_bits", cb if isinstance(cb, str) else 15))
    t.pmd = Pmd(send_bits=cbits,
                send_takeover="client_no_context_takeover" not in got and "client_no_context_takeover" not in o,
                recv_bits=sbits, recv_takeover="server_no_context_takeover" not in got)
    return True


def pmd_server_side(t, offer_value, spec):
    """The suite is the server: the client must offer permessage-deflate; our
    answer is the spec's, without client_max_window_bits when the offer had
    none. Sets t.pmd and returns the header line (None: no usable offer)."""
    offers = [p for n, p in pmd_params(offer_value) if n == "permessage-deflate"]
    if not offers:
        return None
    o = offers[0]
    ans = PMD_SPECS[spec][2]
    if "client_max_window_bits" not in o:
        ans = "; ".join(p for p in ans.split("; ") if not p.startswith("client_max_window_bits"))
    got = pmd_params(ans)[0][1]
    sbits = int(got.get("server_max_window_bits", 15))
    if "server_max_window_bits" in o:
        sbits = min(sbits, int(o["server_max_window_bits"]))
    t.pmd = Pmd(send_bits=sbits, send_takeover="server_no_context_takeover" not in got,
                recv_bits=int(got.get("client_max_window_bits", 15)),
                recv_takeover="client_no_context_takeover" not in got and "client_no_context_takeover" not in o)
    return "Sec-WebSocket-Extensions: " + ans + "\r\n"


def z_frames(t, op, payload, frag=0):
    """A compressed message: RSV1 on its first frame only."""
    z = t.pmd.compress(payload)
    if not frag or len(z) <= frag:
        return [F(op, z, rsv=4)]
    out = []
    for i in range(0, len(z), frag):
        out.append(F(op if i == 0 else OP_CONT, z[i:i + frag], fin=i + frag >= len(z), rsv=4 if i == 0 else 0))
    return out


def json_payload(n, salt=0):
    out = bytearray()
    k = salt
    while len(out) < n:
        out += b'{"type":"message","channel":"chat:%d","seq":%d,"data":{"text":"hello"}},' % (k % 7, k)
        k += 1
    return bytes(out[:n])


def _z_echo(kind, size, count, frag=0, plain_every=0):
    def run(t):
        if t.pmd is None:
            t.fail("permessage-deflate was not agreed")
            return
        for i in range(count):
            if kind == "text":
                data, op = json_payload(size, i), OP_TEXT
            elif kind == "binary":
                data, op = bytes((j * 7 + i) & 0xFF for j in range(size)), OP_BINARY
            else:  # incompressible
                data, op = os.urandom(size), OP_BINARY
            if plain_every and i % plain_every == plain_every - 1:
                t.send_frames([F(op, data)])
            else:
                t.send_frames(z_frames(t, op, data, frag))
            if not t.expect([("text" if op == OP_TEXT else "binary", data)]):
                t.shut()
                return
            t.app.clear()
            t.events = [e for e in t.events if e[0] not in ("text", "binary")]
        t.close_normal()
    return run


def _section12():
    sizes = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
    for sub, (kind, desc) in enumerate([("text", "text (JSON)"), ("binary", "binary (patterned)"),
                                        ("random", "binary (incompressible)")], 1):
        for i, n in enumerate(sizes, 1):
            count = 10 if n <= 16384 else 3
            add("12.%d.%d" % (sub, i), "compressed %s messages of %d bytes, %d echoes" % (desc, n, count),
                _z_echo(kind, n, count), kind="pmd")
    for i, n in enumerate([1024, 16384, 131072], 1):
        add("12.4.%d" % i, "compressed text of %d bytes in frames of 100 bytes (RSV1 on the first)" % n,
            _z_echo("text", n, 3, frag=100), kind="pmd")
    for i, n in enumerate([256, 8192], 1):
        add("12.5.%d" % i, "compressed and plain messages of %d bytes mixed" % n,
            _z_echo("text", n, 9, plain_every=3), kind="pmd")


def _section13():
    sizes = [64, 4096, 65536]
    for spec in sorted(PMD_SPECS):
        for i, n in enumerate(sizes, 1):
            add("13.%d.%d" % (spec, i), "%s: text of %d bytes, 5 echoes" % (PMD_SPECS[spec][0], n),
                _z_echo("text", n, 5), kind="pmd")
    # RFC 7692 §6.1 and RFC 6455 §5.2: RSV1 anywhere else fails with 1002
    def rsv_cont(t):
        z = t.pmd.compress(json_payload(200))
        t.send_frames([F(OP_TEXT, z[:10], fin=False, rsv=4), F(OP_CONT, z[10:], rsv=4)])
        t.expect_fail((1002,))
    def rsv_ping(t):
        t.send_frames([F(OP_PING, b"x", rsv=4)])
        t.expect_fail((1002,))
    def corrupt(t):
        t.send_frames([F(OP_BINARY, b"\x07\x00", rsv=4)])
        t.expect_fail((1007, 1002))
    add("13.9.1", "RSV1 on a continuation frame -> fail 1002", rsv_cont, kind="pmd")
    add("13.9.2", "RSV1 on a ping -> fail 1002", rsv_ping, kind="pmd")
    add("13.9.3", "a corrupt DEFLATE stream (block type 3) -> fail 1007", corrupt, kind="pmd")


for _build in (_section1, _section2, _section3, _section4, _section5, _section6, _section7, _section8, _section9,
               _section10, _section11, _section12, _section13):
    _build()
CASES.sort(key=lambda c: c.key)
assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


def select_cases(role, patterns):
    chosen = [c for c in CASES if role in c.roles]
    if not patterns:
        return chosen
    pats = [p.strip() for p in patterns.split(",") if p.strip()]

    def hit(cid):
        for p in pats:
            if "*" in p or "?" in p or "[" in p:
                if fnmatch.fnmatchcase(cid, p):
                    return True
            elif cid == p or cid.startswith(p + "."):
                return True
        return False
    return [c for c in chosen if hit(c.id)]


# ---------------------------------------------------------------------------
# Running and reporting


class Result:
    def __init__(self, case, verdict, notes, duration):
        self.case, self.verdict, self.notes, self.duration = case, verdict, notes, duration


def finish_result(case, t, start):
    verdict = t.verdict
    if case.info and verdict != FAILED:
        verdict = INFO
    return Result(case, verdict, list(t.notes), time.monotonic() - start)


def run_case(case, t, start):
    try:
        case.run(t)
    except CaseTimeout as e:
        t.fail(str(e))
    except Exception as e:  # a peer doing something unforeseen must not stop the run
        t.fail("suite error: %s: %s" % (type(e).__name__, e))
    finally:
        t.shut()
    return finish_result(case, t, start)


def report(results, role, args, extra=None):
    out = sys.stdout
    for r in results:
        line = "case %-8s %-10s %s" % (r.case.id, r.verdict, r.case.desc)
        if r.notes and (r.verdict != OK or args.verbose):
            line += "  [" + "; ".join(r.notes) + "]"
        out.write(line + "\n")
    out.write("\nSummary (%s under test%s):\n" % (role, (", agent " + extra) if extra else ""))
    totals = {OK: 0, NONSTRICT: 0, INFO: 0, FAILED: 0}
    for sec in sorted({r.case.section for r in results}):
        rs = [r for r in results if r.case.section == sec]
        cnt = {v: sum(1 for r in rs if r.verdict == v) for v in totals}
        for v in totals:
            totals[v] += cnt[v]
        out.write("  section %-3d %-36s %3d cases: %3d OK, %3d NON-STRICT, %3d INFO, %3d FAILED\n" % (
            sec, SECTIONS.get(sec, ""), len(rs), cnt[OK], cnt[NONSTRICT], cnt[INFO], cnt[FAILED]))
    out.write("NON-STRICT: %d\n" % totals[NONSTRICT])
    if args.json:
        doc = {"role": role, "agent": extra,
               "summary": {"ok": totals[OK], "non_strict": totals[NONSTRICT], "info": totals[INFO],
                           "failed": totals[FAILED]},
               "cases": [{"id": r.case.id, "description": r.case.desc, "verdict": r.verdict, "notes": r.notes,
                          "duration": round(r.duration, 3)} for r in results]}
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
    passed = totals[OK] + totals[NONSTRICT] + totals[INFO]
    out.write("%d passed, %d failed\n" % (passed, totals[FAILED]))
    out.flush()
    return 1 if totals[FAILED] else 0


def is_loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def parse_ws_url(url):
    if not url.startswith("ws://"):
        raise SystemExit("only ws:// URLs are supported: %r" % url)
    rest = url[5:]
    hostport, _, path = rest.partition("/")
    path = "/" + path
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    port = int(port or 80)
    if not is_loopback(host):
        raise SystemExit("refusing to test a non-loopback host: %r" % host)
    return host, port, path


def client_mode(args):
    """Test a server: the suite connects to it for every case."""
    host, port, path = parse_ws_url(args.url)
    cases = select_cases("server", args.cases)
    if not cases:
        raise SystemExit("no case selected")
    hosthdr = "%s:%d" % (host, port)
    run_deadline = time.monotonic() + args.timeout
    results = []
    for case in cases:
        start = time.monotonic()
        if start > run_deadline:
            results.append(Result(case, FAILED, ["not run: overall time limit reached"], 0.0))
            continue
        try:
            sock = socket.create_connection((host, port), timeout=3.0)
        except OSError as e:
            results.append(Result(case, FAILED, ["cannot connect: %s" % e], 0.0))
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = Tester(sock, "server", case.timeout)
        t.ctx = {"host": hosthdr, "path": path}
        if case.kind in ("ws", "pmd"):
            key = base64.b64encode(os.urandom(16)).decode()
            hdrs = std_headers(key)
            offer = PMD_SPECS[case.key[1] if case.section == 13 and case.key[1] in PMD_SPECS else 1][1]
            if case.kind == "pmd":
                hdrs = hdrs + ["Sec-WebSocket-Extensions: " + offer]
            try:
                status, headers, first = hs_exchange(t, _request(path, hosthdr, hdrs))
                ext = header(headers, "sec-websocket-extensions") if headers else None
                if case.kind == "pmd" and headers:
                    headers = [h for h in headers if h[0].lower() != "sec-websocket-extensions"]
                opened = check_101(t, status, headers, key, first)
                if opened and case.kind == "pmd":
                    opened = pmd_client_side(t, offer, ext)
            except CaseTimeout as e:
                t.fail(str(e))
                opened = False
            if not opened:
                t.shut()
                results.append(finish_result(case, t, start))
                continue
        results.append(run_case(case, t, start))
        if args.verbose:
            r = results[-1]
            sys.stderr.write("  %s %s %.2fs %s\n" % (r.case.id, r.verdict, r.duration, "; ".join(r.notes)))
    return report(results, "server", args)


def validate_client_request(first, headers):
    parts = first.split(" ")
    problems = []
    if len(parts) != 3 or parts[0] != "GET":
        problems.append("method is not GET")
    elif parts[2] not in ("HTTP/1.1",):
        problems.append("HTTP version %s" % parts[2])
    if not header(headers, "host"):
        problems.append("no Host header")
    if (header(headers, "upgrade") or "").lower() != "websocket":
        problems.append("no 'Upgrade: websocket'")
    if not has_token(header(headers, "connection"), "upgrade"):
        problems.append("Connection header lacks 'Upgrade'")
    key = header(headers, "sec-websocket-key") or ""
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            problems.append("Sec-WebSocket-Key does not decode to 16 bytes")
    except (ValueError, TypeError):
        problems.append("Sec-WebSocket-Key is not base64")
    if header(headers, "sec-websocket-version") != "13":
        problems.append("Sec-WebSocket-Version is not 13")
    return problems, key


def server_mode(args):
    """Play the fuzzing server: the client under test connects for each case."""
    cases = select_cases("client", args.cases)
    if not cases:
        raise SystemExit("no case selected")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    print("listening on 127.0.0.1:%d" % port, flush=True)
    proc = None
    if args.run:
        cmd = [a.replace("{port}", str(port)) for a in args.run]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
    deadline = time.monotonic() + args.timeout
    results = {}
    agent = None
    finished = False
    idle_since = time.monotonic()
    while not finished:
        now = time.monotonic()
        if now > deadline:
            sys.stderr.write("suite: overall time limit reached\n")
            break
        if proc is not None and proc.poll() is not None:
            r, _, _ = select.select([lsock], [], [], 0.2)
            if not r:
                break
        elif now - idle_since > args.idle:
            sys.stderr.write("suite: no connection from the client for %.0f s\n" % args.idle)
            break
        r, _, _ = select.select([lsock], [], [], 0.2)
        if not r:
            continue
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        outcome = serve_connection(conn, cases, results, args)
        idle_since = time.monotonic()
        if outcome:
            kind, value = outcome
            if kind == "agent":
                agent = agent or value
            elif kind == "done":
                agent = agent or value
                finished = True
    lsock.close()
    if proc is not None:
        try:
            proc.wait(timeout=10 if finished else 1)
        except subprocess.TimeoutExpired:
            sys.stderr.write("suite: stopping the client (pid %d)\n" % proc.pid)
            proc.kill()
            proc.wait()
        if proc.returncode:
            sys.stderr.write("suite: client exited with status %s\n" % proc.returncode)
    ordered = []
    for c in cases:
        r = results.get(c.id)
        if r is None:
            r = Result(c, FAILED, ["not run by the client"], 0.0)
        ordered.append(r)
    if not finished:
        sys.stderr.write("suite: the client did not call /updateReports\n")
    return report(ordered, "client", args, agent)


def serve_connection(conn, cases, results, args):
    start = time.monotonic()
    t = Tester(conn, "client", 6.0)
    try:
        head = t.read_http_head(5.0)
    except OSError:
        head = None
    if head is None:
        t.shut()
        return None
    first, headers = parse_http_head(head)
    parts = first.split(" ")
    target = parts[1] if len(parts) > 1 else "/"
    path, _, query = target.partition("?")
    params = {}
    for kv in query.split("&"):
        if "=" in kv:
            k, v = kv.split("=", 1)
            params[k] = v
    problems, key = validate_client_request(first, headers)

    def upgrade(pmd_spec=None):
        ext = ""
        if pmd_spec:
            ext = pmd_server_side(t, header(headers, "sec-websocket-extensions"), pmd_spec)
            if ext is None:
                t.fail("the client offered no permessage-deflate")
                ext = ""
        t.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n%s\r\n" % (accept_key(key), ext)).encode())
        t.open_ws()

    def refuse(status):
        t.write(("HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % status).encode())
        t.shut()

    try:
        if path == "/getCaseCount":
            if problems:
                return refuse("400 Bad Request")
            upgrade()
            t.send(OP_TEXT, str(len(cases)).encode())
            t.close_normal()
            return None
        if path == "/updateReports":
            if problems:
                refuse("400 Bad Request")
            else:
                upgrade()
                t.close_normal()
            return ("done", params.get("agent"))
        if path == "/runCase":
            try:
                idx = int(params.get("case", ""))
            except ValueError:
                idx = 0
            if not 1 <= idx <= len(cases):
                return refuse("404 Not Found")
            case = cases[idx - 1]
            t.deadline = time.monotonic() + case.timeout
            t.timeout = case.timeout
            t.ctx = {"key": key, "path": path}
            if problems:
                t.fail("client handshake request invalid: " + "; ".join(problems))
                refuse("400 Bad Request")
                results[case.id] = finish_result(case, t, start)
            else:
                if case.kind == "ws":
                    upgrade()
                elif case.kind == "pmd":
                    upgrade(case.key[1] if case.section == 13 and case.key[1] in PMD_SPECS else 1)
                results[case.id] = run_case(case, t, start)
            if args.verbose:
                r = results[case.id]
                sys.stderr.write("  %s %s %.2fs %s\n" % (r.case.id, r.verdict, r.duration, "; ".join(r.notes)))
            return ("agent", params.get("agent"))
        refuse("404 Not Found")
        return None
    except (CaseTimeout, OSError):
        t.shut()
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="RFC 6455 conformance suite (Autobahn-style case list)")
    sub = ap.add_subparsers(dest="mode", required=True)
    pc = sub.add_parser("client", help="act as a client and test the echo server at URL")
    pc.add_argument("url", help="ws://127.0.0.1:PORT/path of the echo server under test")
    ps = sub.add_parser("server", help="act as fuzzing server and test a client")
    ps.add_argument("--port", type=int, default=9001, help="port on 127.0.0.1 (0 = any free port)")
    ps.add_argument("--run", nargs=argparse.REMAINDER,
                    help="command starting the client under test; {port} is replaced by the port")
    ps.add_argument("--idle", type=float, default=30.0,
                    help="give up after this many seconds without a connection from the client")
    sub.add_parser("list", help="list the cases")
    for p in (pc, ps):
        p.add_argument("--cases", help="comma-separated ids or globs, e.g. '1.*,6.4.*' or '7'")
        p.add_argument("--json", help="write a JSON report to this file")
        p.add_argument("--timeout", type=float, default=600.0, help="bound on the whole run in seconds")
        p.add_argument("-v", "--verbose", action="store_true", help="show notes of OK cases, progress on stderr")
    args = ap.parse_args(argv)
    if args.mode == "list":
        for c in CASES:
            print("%-8s %-14s %s" % (c.id, "+".join(r for r in c.roles), c.desc))
        print("%d cases" % len(CASES))
        return 0
    if args.mode == "client":
        return client_mode(args)
    return server_mode(args)


if __name__ == "__main__":
    sys.exit(main())
