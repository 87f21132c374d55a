#!/usr/bin/env python3
# Kull (seed 003) end to end: examples/seeds/kull/kull_server with devices
# that are Python websockets clients and the seed's own C client
# (kull_client), replaying the document: ?token=userId:deviceId, every sync
# message type delivered to all of that user's devices and to no other
# user's, DEVICE_CONNECTED/DEVICE_DISCONNECTED, PING/PONG both ways, the
# client's PING timer dropping a connection without PONG, and its reconnect
# schedule (1, 2, 4, 8, 16, 32, 60, 60, 60, 60 s, scaled down 100x here) ending
# after 10 attempts against a dead port. Ends with "N passed, M failed".
import asyncio, json, re, socket, time
import seedlib
from seedlib import check, procs, recv, refused

websockets = seedlib.need_websockets()
SERVER, CLIENT = "build/seeds/kull/kull_server", "build/seeds/kull/kull_client"


def post(port, user, body):
    return seedlib.request(port, "POST", "/api/sync/" + user, json.dumps(body), {"Content-Type": "application/json"})


async def until(ws, typ, timeout=3.0):  # the next message of that type (others skipped)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = await recv(ws, end - time.monotonic())
        if m is None or m.get("type") == typ:
            return m
    return None


async def quiet(ws):  # nothing pending: a PING's PONG is the very next message
    await ws.send(json.dumps({"type": "PING", "data": {"timestamp": 99}}))
    m = await recv(ws)
    return m == {"type": "PONG", "data": {"timestamp": 99}}, m


class CClient:  # kull_client's stdout, line by line, with bounded waits
    def __init__(self, proc):
        self.p, self.lines = proc, []

    async def line(self, pred, timeout=5.0):
        end = time.monotonic() + timeout
        for l in self.lines:
            if pred(l):
                self.lines.remove(l)
                return l
        while time.monotonic() < end:
            try:
                raw = await asyncio.wait_for(self.p.stdout.readline(), end - time.monotonic())
            except asyncio.TimeoutError:
                return None
            if not raw:
                return None
            l = raw.decode().rstrip("\n")
            if pred(l):
                return l
            self.lines.append(l)
        return None

    async def recv(self, typ, timeout=5.0):
        l = await self.line(lambda s: s.startswith("recv %s " % typ), timeout)
        return json.loads(l.split(" ", 2)[2]) if l else None


async def cclient(*args):
    p = await asyncio.create_subprocess_exec(CLIENT, *args, stdout=asyncio.subprocess.PIPE)
    procs.append(p)
    return CClient(p)


async def devices(port):
    base = "ws://127.0.0.1:%d/ws" % port
    check(await refused(base) == 401, "upgrade without ?token=: 401")
    check(await refused(base + "?token=alice") == 401, "a token without ':deviceId': 401")
    check(await refused(base + "?token=:mac") == 401, "a token without userId: 401")
    mac = await websockets.connect(base + "?token=alice:mac-1", open_timeout=5)
    m = await until(mac, "DEVICE_CONNECTED")
    check(m and m["data"]["userId"] == "alice" and m["data"]["deviceId"] == "mac-1",
          "a device sees its own DEVICE_CONNECTED: %r" % m)
    bob = await websockets.connect(base + "?token=bob:ipad-9", open_timeout=5)
    await until(bob, "DEVICE_CONNECTED")
    phone = await websockets.connect(base + "?token=alice:iphone-2", open_timeout=5)
    m = await until(mac, "DEVICE_CONNECTED")
    check(m and m["data"]["deviceId"] == "iphone-2", "mac-1 sees iphone-2 connect: %r" % m)
    got = {(await until(phone, "DEVICE_CONNECTED") or {}).get("data", {}).get("deviceId") for _ in range(2)}
    check(got == {"iphone-2", "mac-1"}, "iphone-2 learns of itself and of mac-1: %r" % got)
    ok, m = await quiet(bob)
    check(ok, "bob's device got nothing of alice's devices (%r)" % m)

    # the C client as alice's third device, PING every 200 ms, sending UPDATE_PROGRESS once open
    shoot = {"shootId": "abc123", "processedCount": 247, "totalCount": 1000, "progress": 0.247,
             "currentImage": "IMG_2047.jpg", "eta": 45.2, "provider": "gpt-5-nano", "status": "processing"}
    c = await cclient(base, "--user", "alice", "--device", "mac-c", "--ping-ms", "200",
                      "--send", json.dumps({"type": "UPDATE_PROGRESS", "data": shoot}))
    check(await c.line(lambda s: s.startswith("state OPEN")) is not None, "kull_client connects (state OPEN)")
    m = await c.recv("DEVICE_CONNECTED")
    check(m is not None, "kull_client prints DEVICE_CONNECTED: %r" % m)
    m = await until(mac, "DEVICE_CONNECTED")
    check(m and m["data"]["deviceId"] == "mac-c", "mac-1 sees the C client connect: %r" % m)
    await until(phone, "DEVICE_CONNECTED")
    for name, ws in (("mac-1", mac), ("iphone-2", phone)):
        m = await until(ws, "SHOOT_PROGRESS")
        check(m == {"type": "SHOOT_PROGRESS", "data": shoot}, "the C client's UPDATE_PROGRESS reaches %s as SHOOT_PROGRESS" % name)
    m = await c.recv("SHOOT_PROGRESS")
    check(m == {"type": "SHOOT_PROGRESS", "data": shoot}, "...and the C client itself")
    pongs = [await c.recv("PONG", 3) for _ in range(2)]
    check(all(p and isinstance(p["data"].get("timestamp"), int) for p in pongs),
          "the C client's PINGs get PONGs with their timestamp: %r" % pongs)

    # the backend's events: each type to all of alice's devices, none to bob's
    events = [("CREDIT_UPDATE", {"balance": 42, "change": -3, "reason": "shoot"}),
              ("PROMPT_CHANGE", {"promptId": "p1", "action": "updated"}),
              ("ADMIN_SESSION_UPDATE", {"sessionId": "s1", "action": "started"}),
              ("SHOOT_PROGRESS", dict(shoot, processedCount=1000, progress=1.0, status="completed"))]
    for typ, data in events:
        st, body = post(port, "alice", {"type": typ, "data": data})
        check(st == 200 and body == {"delivered": 3}, "POST %s for alice: delivered to 3 devices (%s %r)" % (typ, st, body))
        want = {"type": typ, "data": data}
        a1, a2, a3 = await until(mac, typ), await until(phone, typ), await c.recv(typ)
        check(a1 == want and a2 == want and a3 == want, "%s reaches mac-1, iphone-2 and the C client" % typ)
    ok, m = await quiet(bob)
    check(ok, "bob's device got none of alice's events (%r)" % m)
    st, body = post(port, "bob", {"type": "CREDIT_UPDATE", "data": {"balance": 7}})
    m = await until(bob, "CREDIT_UPDATE")
    check(body == {"delivered": 1} and m == {"type": "CREDIT_UPDATE", "data": {"balance": 7}}, "bob's credit reaches bob")
    ok, m = await quiet(mac)
    check(ok, "alice's mac-1 got nothing of bob's credit (%r)" % m)
    st, _ = post(port, "alice", {"type": "DANCE", "data": {}})
    check(st == 400, "an unknown type at the backend hook: 400 (%s)" % st)
    st, body = post(port, "nobody", {"type": "CREDIT_UPDATE", "data": {}})
    check(body == {"delivered": 0}, "a user with no devices: delivered 0 (%r)" % body)

    # PING from a device, and a device leaving
    await mac.send(json.dumps({"type": "PING", "data": {"timestamp": 1234}}))
    check(await until(mac, "PONG") == {"type": "PONG", "data": {"timestamp": 1234}}, "PING -> PONG with its data")
    await phone.close()
    m1, m3 = await until(mac, "DEVICE_DISCONNECTED"), await c.recv("DEVICE_DISCONNECTED")
    check(m1 and m3 and m1["data"]["deviceId"] == "iphone-2" == m3["data"]["deviceId"],
          "iphone-2's DEVICE_DISCONNECTED reaches mac-1 and the C client")
    c.p.terminate()
    m = await until(mac, "DEVICE_DISCONNECTED")
    check(m and m["data"]["deviceId"] == "mac-c", "the C client's clean exit: DEVICE_DISCONNECTED mac-c (%r)" % m)
    rc = await asyncio.wait_for(c.p.wait(), 5)
    check(rc == 0, "kull_client exits 0 after SIGTERM (%s)" % rc)
    ok, m = await quiet(bob)
    check(ok, "bob's device got no DEVICE_* of alice's (%r)" % m)
    await mac.close()
    await bob.close()


async def keepalive():  # a stand-in server: it PINGs the client and never answers its PINGs
    conns, seen = [], asyncio.Queue()

    async def handler(ws, path):
        conns.append(path)
        await ws.send(json.dumps({"type": "PING", "data": {"timestamp": 7}}))
        try:
            async for msg in ws:
                await seen.put((len(conns), json.loads(msg)))
        except websockets.ConnectionClosed:
            pass
        await seen.put((len(conns), "closed %s" % ws.close_code))

    async with websockets.serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        c = await cclient("ws://127.0.0.1:%d/ws" % port, "--user", "u1", "--device", "d1", "--ping-ms", "300",
                          "--backoff-base-ms", "50")
        got, end = [], time.monotonic() + 8
        while time.monotonic() < end and len(conns) < 2:
            try:
                got.append(await asyncio.wait_for(seen.get(), end - time.monotonic()))
            except asyncio.TimeoutError:
                break
        check(conns and conns[0] == "/ws?token=u1:d1", "the client connects with ?token=userId:deviceId (%r)" % conns[:1])
        first = [m for n, m in got if n == 1]
        check({"type": "PONG", "data": {"timestamp": 7}} in first, "the client answers the server's PING with PONG")
        pings = [m for m in first if isinstance(m, dict) and m.get("type") == "PING"]
        check(len(pings) == 1 and isinstance(pings[0]["data"].get("timestamp"), int),
              "it sends a PING after --ping-ms: %r" % pings)
        check("closed 1001" in first, "no PONG by the next PING: the client closes the connection (%r)" % first[-1:])
        check(len(conns) >= 2, "...and reconnects (%d connections)" % len(conns))
        check(await c.line(lambda s: s == "nopong", 1) is not None, "it prints nopong")
        c.p.terminate()
        await asyncio.wait_for(c.p.wait(), 5)


async def backoff():  # the schedule against a dead port: 10 attempts, growing delays, then FAILED
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    c = await cclient("ws://127.0.0.1:%d/ws" % dead, "--user", "u", "--device", "d",
                      "--backoff-base-ms", "10", "--backoff-max-ms", "600")
    rc = await asyncio.wait_for(c.p.wait(), 20)
    out = c.lines + [l.decode().rstrip("\n") for l in (await c.p.stdout.read()).splitlines()]
    rec = [tuple(map(int, re.findall(r"attempt=(\d+) delay_ms=(\d+) t=(\d+)", l)[0]))
           for l in out if l.startswith("state RECONNECTING")]
    conn_t = [int(l.rsplit("t=", 1)[1]) for l in out if l.startswith("state CONNECTING")]
    check([a for a, _, _ in rec] == list(range(1, 11)), "10 reconnect attempts: %r" % [a for a, _, _ in rec])
    check([d for _, d, _ in rec] == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600],
          "delays 1,2,4,8,16,32,60,60,60,60 s / 100: %r" % [d for _, d, _ in rec])
    gaps = [b - a for a, b in zip(conn_t, conn_t[1:])]
    check(len(gaps) == 10 and all(g >= d for g, (_, d, _) in zip(gaps, rec)) and gaps[6] > 3 * gaps[1],
          "the measured gaps between attempts grow with the delays: %r ms" % gaps)
    check(out and out[-1].startswith("state FAILED") and rc == 1, "then it gives up: state FAILED, exit 1 (%r)" % out[-1:])


async def main(port):
    try:
        await devices(port)
        await keepalive()
        await backoff()
    finally:  # only the clients this test started
        for q in procs:
            if q.returncode is None:
                q.kill()
                await q.wait()


seedlib.build(SERVER, CLIENT)
seedlib.run_with_server([SERVER, "--port", "0"], main, 50)
seedlib.finish()
