#!/usr/bin/env python3
"""Python websockets (10.x) with permessage-deflate, for tests/interop_pmd.sh.

  pmd_py.py server [--port P] [PARAMS]   echo server; prints "listening on
                                          127.0.0.1:P", then "ext: VALUE" per
                                          connection (the header it answered)
  pmd_py.py client URL [PARAMS]          sends text and binary messages of
                                          0 B-1 MiB, checks every echo and that
                                          the extension was agreed; prints
                                          "ext: VALUE" and "N passed, M failed"
  PARAMS: --snt --cnt (no context takeover, server / client), --sbits N,
          --cbits N (max window bits), --help
"""
import argparse
import asyncio
import sys

import websockets
from websockets.extensions.permessage_deflate import (ClientPerMessageDeflateFactory,
                                                      ServerPerMessageDeflateFactory)


def payload(n, k):
    out = bytearray()
    while len(out) < n:
        out += b'{"type":"message","seq":%d,"text":"hi"},' % k
        k += 1
    return bytes(out[:n])


async def server(args):
    fac = ServerPerMessageDeflateFactory(server_no_context_takeover=args.snt,
                                         client_no_context_takeover=args.cnt,
                                         server_max_window_bits=args.sbits,
                                         client_max_window_bits=args.cbits)

    async def echo(ws, path=None):
        print("ext: %s" % ws.response_headers.get("Sec-WebSocket-Extensions"), flush=True)
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass

    async with websockets.serve(echo, "127.0.0.1", args.port, extensions=[fac], max_size=None,
                                compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await asyncio.Future()


async def client(args):
    fac = ClientPerMessageDeflateFactory(server_no_context_takeover=args.snt,
                                         client_no_context_takeover=args.cnt,
                                         server_max_window_bits=args.sbits,
                                         client_max_window_bits=args.cbits or True)
    passed = failed = 0
    async with websockets.connect(args.url, extensions=[fac], max_size=None, compression=None) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions")
        print("ext: %s" % ext, flush=True)
        if not ext or "permessage-deflate" not in ext:
            failed += 1
            print("FAILED: not agreed")
        for n in (0, 100, 5000, 70000, 1 << 20):
            for k, binary in ((0, False), (1, True)):
                p = payload(n, n + k)
                m = p if binary else p.decode()
                await ws.send(m)
                got = await ws.recv()
                if got == m:
                    passed += 1
                else:
                    failed += 1
                    print("FAILED: echo of %d bytes" % n)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("url", nargs="?")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--snt", action="store_true")
    ap.add_argument("--cnt", action="store_true")
    ap.add_argument("--sbits", type=int)
    ap.add_argument("--cbits", type=int)
    args = ap.parse_args()
    if args.mode == "server":
        asyncio.run(server(args))
        return 0
    return asyncio.run(client(args))


if __name__ == "__main__":
    sys.exit(main())
