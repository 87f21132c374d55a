#!/usr/bin/env python3
"""Interop peer built on Python's `websockets` package.

  py_peer.py client URL [--tls CA]
                          runs the message matrix against an echo server,
                          ends with "N passed, M failed"; for wss:// URLs
                          --tls CA verifies the server against CA (PEM)
  py_peer.py server [--tls CERT KEY]
                          echo server on 127.0.0.1, port chosen by the OS;
                          prints "listening on 127.0.0.1:PORT", then one line
                          "closed CODE" per connection that ends; with --tls
                          it serves wss:// with that PEM chain and key
"""
import asyncio
import ssl
import sys

import websockets

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 8 * 1024 * 1024]
MAX = 16 * 1024 * 1024


def payload(n, seed):
    period = bytes((seed + i * 31) % 251 for i in range(251))
    return (period * (n // 251 + 1))[:n]


async def client(url, tls=None):
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAILED:", what, flush=True)

    async with websockets.connect(url, max_size=MAX, ping_interval=None, ssl=tls) as ws:
        for n in SIZES:
            b = payload(n, n & 0xFF)
            await ws.send(b)
            got = await asyncio.wait_for(ws.recv(), 20)
            check(isinstance(got, bytes) and got == b, "binary %d" % n)
            t = ("κόσμε-" * (n // 12 + 1))[: max(0, n // 2)]
            await ws.send(t)
            got = await asyncio.wait_for(ws.recv(), 20)
            check(isinstance(got, str) and got == t, "text %d chars" % len(t))
        # fragmented message from an iterable: one message of three frames
        await ws.send(["ab", "cd", "ef"])
        got = await asyncio.wait_for(ws.recv(), 5)
        check(got == "abcdef", "fragmented text")
        pong = await ws.ping(b"are you there")
        try:
            await asyncio.wait_for(pong, 5)
            check(True, "ping answered")
        except asyncio.TimeoutError:
            check(False, "ping answered")
        await ws.close(code=4000, reason="done here")
        check(ws.close_code == 4000, "server echoed close code 4000 (got %r)" % ws.close_code)
    # a normal close, code 1000
    async with websockets.connect(url, ping_interval=None, ssl=tls) as ws:
        await ws.send("x")
        await asyncio.wait_for(ws.recv(), 5)
    check(ws.close_code == 1000, "close code 1000")
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


async def serve(tls=None):
    async def echo(ws, path=None):
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass
        print("closed %s" % ws.close_code, flush=True)

    async with websockets.serve(echo, "127.0.0.1", 0, max_size=MAX, ping_interval=None,
                                ssl=tls) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await asyncio.sleep(600)  # the test stops it long before


def main():
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        i = args.index("--tls")
        if args[0] == "client" and i + 1 < len(args):
            tls = ssl.create_default_context(cafile=args[i + 1])
            del args[i:i + 2]
        elif args[0] == "server" and i + 2 < len(args):
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args[i + 1], args[i + 2])
            del args[i:i + 3]
    if len(args) >= 2 and args[0] == "client":
        return asyncio.run(client(args[1], tls))
    if len(args) >= 1 and args[0] == "server":
        asyncio.run(serve(tls))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
