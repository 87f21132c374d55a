"""Autobahn-style test client on top of the Python "websockets" package.
Usage: /usr/bin/python3 py_client.py ws://127.0.0.1:PORT AGENT"""
import asyncio
import sys

import websockets


async def session(url, echo):
    received = []
    try:
        async with websockets.connect(url, max_size=None, compression=None, open_timeout=5) as ws:
            async for msg in ws:
                received.append(msg)
                if echo:
                    await ws.send(msg)
    except (websockets.WebSocketException, OSError, asyncio.TimeoutError):
        pass
    return received


async def main(base, agent):
    got = await session(base + "/getCaseCount", False)
    count = int(got[0]) if got else 0
    for i in range(1, count + 1):
        await session("%s/runCase?case=%d&agent=%s" % (base, i, agent), True)
    await session("%s/updateReports?agent=%s" % (base, agent), False)
    print("python client: ran %d cases" % count, file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001",
                     sys.argv[2] if len(sys.argv) > 2 else "py-websockets"))
