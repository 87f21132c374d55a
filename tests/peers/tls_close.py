#!/usr/bin/env python3
"""Checks that a wss:// peer ends TLS with close_notify (standard library only).

  tls_close.py client PORT CA   connects to an echo server on localhost:PORT,
                                does the upgrade, sends a masked text message
                                and a close 1000, then reads to the end
  tls_close.py server CERT KEY  serves one wss:// connection on 127.0.0.1
                                (prints "listening on 127.0.0.1:PORT"), echoes
                                frames until the client's close, answers it,
                                then reads to the end

A stream that ends without close_notify raises ssl.SSLEOFError (Python 3.10+
with OpenSSL 3), so "clean end" below means a close_notify arrived.
Ends with "N passed, M failed".
"""
import base64
import os
import socket
import ssl
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autobahn"))
from suite import accept_key, build_frame  # noqa: E402

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok:", what, flush=True)
    else:
        failed += 1
        print("FAILED:", what, flush=True)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError("stream ended")
        buf += d
    return buf


def read_frame(s):
    b0, b1 = read_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    key = read_exact(s, 4) if b1 & 0x80 else None
    data = read_exact(s, n)
    if key:
        data = bytes(c ^ key[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, data


def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(1)
        if not d:
            raise EOFError("stream ended in the HTTP head")
        buf += d
    return buf.decode("latin-1")


def clean_end(s, what):
    try:
        rest = s.recv(4096)
        while rest:
            rest = s.recv(4096)
        check(True, what + ": the stream ended with close_notify")
    except ssl.SSLEOFError as e:
        check(False, what + ": the stream ended without close_notify (%s)" % e)
    except OSError as e:
        check(False, what + ": %s" % e)


def client(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="localhost")
    check(s.version() == "TLSv1.2", "negotiated %s" % s.version())
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (port, key)).encode())
    head = read_head(s)
    check(head.startswith("HTTP/1.1 101") and accept_key(key) in head, "upgrade answered with 101")
    s.sendall(build_frame(0x1, b"hello over tls", mask=True))
    op, data = read_frame(s)
    check(op == 0x1 and data == b"hello over tls", "echo")
    s.sendall(build_frame(0x8, struct.pack("!H", 1000), mask=True))
    op, data = read_frame(s)
    check(op == 0x8 and data[:2] == struct.pack("!H", 1000), "close 1000 echoed")
    clean_end(s, "server")
    s.close()


def server(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    print("listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
    raw, _ = ls.accept()
    raw.settimeout(10)
    s = ctx.wrap_socket(raw, server_side=True)
    head = read_head(s)
    k = [l.split(":", 1)[1].strip() for l in head.split("\r\n")
         if l.lower().startswith("sec-websocket-key:")]
    s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(k[0] if k else "")).encode())
    while True:
        op, data = read_frame(s)
        s.sendall(build_frame(op, data))
        if op == 0x8:
            break
    clean_end(s, "client")
    s.close()


def main():
    try:
        if len(sys.argv) == 4 and sys.argv[1] == "client":
            client(int(sys.argv[2]), sys.argv[3])
        elif len(sys.argv) == 4 and sys.argv[1] == "server":
            server(sys.argv[2], sys.argv[3])
        else:
            print(__doc__)
            return 2
    except (OSError, EOFError) as e:
        check(False, "connection: %s" % e)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
