#!/usr/bin/env python3
# Issue 18, encode once for fan-out, against real peers: examples/chat_server
# (the router, server defaults: no context takeover) and
#  - Python websockets clients (they offer permessage-deflate) subscribed to
#    one room: a ~300-byte publish reaches each of them intact;
#  - raw-socket clients that read the frames themselves: with the extension
#    offered (windows 15 and 9) the publish arrives with RSV1 set and zlib
#    inflates it to the same JSON; without it, plain.
# Ends with "N passed, M failed".
import asyncio, base64, json, os, socket, struct, subprocess, zlib
import seedlib
from seedlib import check

websockets = seedlib.need_websockets()
PROG = "build/chat_server"


class Raw:
    """A client on a plain socket: sends masked frames, returns frames as read."""

    def __init__(self, host, port, ext):
        self.s = socket.create_connection((host, port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (host, port, key))
        if ext:
            req += "Sec-WebSocket-Extensions: " + ext + "\r\n"
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise IOError("closed during the handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode("latin-1")

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise IOError("closed")
            self.buf += d

    def frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        p = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0, p

    def send_text(self, text):
        p = text.encode()
        m = os.urandom(4)
        hdr = bytes([0x81]) + (bytes([0x80 | len(p)]) if len(p) < 126 else bytes([0xFE]) + struct.pack(">H", len(p)))
        self.s.sendall(hdr + m + bytes(c ^ m[i % 4] for i, c in enumerate(p)))

    def until_message(self):
        """Frames until the router's "message"; returns (first byte, JSON text)."""
        for _ in range(50):
            b0, p = self.frame()
            text = zlib.decompressobj(-15).decompress(p + b"\x00\x00\xff\xff") if b0 & 0x40 else p
            if json.loads(text).get("type") == "message":
                return b0, text.decode()
        raise IOError("no message")


async def main(host, port):
    data = {"text": "Deploy finished: api-gateway v2.14.3 rolled out to eu-west-1 (12/12 pods "
                    "healthy), p99 latency 41 ms", "author": {"id": "u-1842", "name": "release-bot"},
            "tags": ["deploy", "prod"]}
    url = "ws://%s:%d/ws" % (host, port)
    sub = json.dumps({"type": "subscribe", "channel": "room", "id": "s"})
    raws = [("deflate, window 15", "permessage-deflate; client_max_window_bits", True),
            ("deflate, server window 9", "permessage-deflate; server_max_window_bits=9", True),
            ("no extension", None, False)]
    opened = []
    for name, ext, _ in raws:
        r = Raw(host, port, ext)
        check(" 101 " in r.head.split("\r\n")[0] and
              (("permessage-deflate" in r.head) == bool(ext)), "raw client (%s): upgraded" % name)
        r.send_text(sub)
        opened.append(r)
    clients = []
    for i in range(8):
        ws = await websockets.connect(url, compression="deflate" if i < 7 else None)
        await ws.send(sub)
        clients.append(ws)
    await asyncio.sleep(0.3)
    for ws in clients:  # what came before the publish (welcome, acks, presence)
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 0.05)
            except asyncio.TimeoutError:
                break
    await clients[0].send(json.dumps({"type": "publish", "channel": "room", "data": data}))
    got = []
    for ws in clients:
        msg = None
        for _ in range(50):
            m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if m.get("type") == "message":
                msg = m
                break
        got.append(msg)
    check(all(m is not None and m.get("data") == data for m in got),
          "python websockets: all 8 subscribers (7 with deflate) got the publish intact")
    texts = []
    for (name, ext, want), r in zip(raws, opened):
        b0, text = r.until_message()
        texts.append(text)
        check(bool(b0 & 0x40) == want, "raw client (%s): RSV1 %s" % (name, "set" if want else "clear"))
        check(json.loads(text).get("data") == data, "raw client (%s): inflates to the published data" % name)
    check(len(set(texts)) == 1, "raw clients: the same message bytes after zlib inflates")
    for ws in clients:
        await ws.close()


def run():
    if not os.path.exists(PROG):
        seedlib.build(PROG)
    p, line, port = seedlib.start([PROG, "--host", "127.0.0.1", "--port", "0"], stderr=subprocess.DEVNULL)
    try:
        if not port:
            check(False, "chat_server started: " + line)
            return
        asyncio.run(asyncio.wait_for(main(line.split("listening on ")[1].rsplit(":", 1)[0], port), 60))
    except Exception as e:  # a failure of the peer side: one failed check, not a traceback
        check(False, "exception: %r" % (e,))
    finally:
        seedlib.stop(p)


run()
seedlib.finish()
