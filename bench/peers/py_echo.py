"""Python `websockets` echo server for the rtws bench: one process, plain
asyncio, no compression, 16 MiB message cap (as rtws), the library's default
heartbeat (a ping every 20 s), 127.0.0.1 only.
usage: /usr/bin/python3 py_echo.py PORT   (prints "listening on 127.0.0.1:PORT")"""
import asyncio
import signal
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", port, compression=None,
                                max_size=16 << 20, max_queue=None, backlog=1024) as server:
        print("listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
        await stop


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
