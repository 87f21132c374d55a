#!/usr/bin/env python3
"""Seed "CLARITY Pulse" (000_b29db4553886cb13) end to end: examples/seeds/clarity's
client against a Python `websockets` server that plays the CLARITY backend in
the document's message shapes. Checks the bearer token at the upgrade, each
typed message (connectionAck, healthDataUpdate, notification, syncRequest ->
syncResponse, error, undecodable ones), subscribe, pings on the interval,
"missed updates since" on the return to the foreground, reconnect after a
drop, metrics, and the exponential backoff giving up after 5 attempts.
127.0.0.1 only, the port from the OS; stops only the process it started."""
import asyncio, http, json, re, time

import seedlib
from seedlib import Proc, check, procs

websockets = seedlib.need_websockets()
PROG = "build/seeds/clarity/clarity_client"
TOKEN = "clarity-token-7"


def msg(type_, payload):
    return json.dumps({"type": type_, "payload": payload}, separators=(",", ":"))


def update(n, ts, urgent=False):
    return {"id": "u%d" % n, "timestamp": ts, "data": {"heartRate": 60 + n}, "isUrgent": urgent,
            "source": "healthkit"}


class Backend:
    """The CLARITY backend: checks the bearer token, greets with connectionAck,
    keeps every healthDataUpdate, answers requestMissedUpdates{since}."""

    def __init__(self):
        self.auth, self.inbox, self.closes, self.pings, self.updates = [], [], [], [], []
        self.ws, self.sessions = None, 0
        backend = self

        class Proto(websockets.WebSocketServerProtocol):
            async def pong(self, data=b""):  # called for every ping received
                backend.pings.append((time.monotonic(), bytes(data)))
                await super().pong(data)

        self.proto = Proto

    async def process_request(self, path, headers):
        self.auth.append((path, headers.get("Authorization")))
        if headers.get("Authorization") != "Bearer " + TOKEN:
            return http.HTTPStatus.UNAUTHORIZED, [], b"unauthorized\n"
        return None

    async def handler(self, ws, path):
        self.ws, self.sessions = ws, self.sessions + 1
        await ws.send(msg("connectionAck", {"sessionId": "s-%d" % self.sessions, "serverTime": "2026-12-06T10:00:00Z",
                                            "capabilities": ["healthDataUpdate", "notification", "syncRequest"]}))
        try:
            async for m in ws:
                d = json.loads(m)
                self.inbox.append(d)
                if d.get("type") == "requestMissedUpdates":
                    for u in self.updates:
                        if d.get("since") is None or u["timestamp"] > d["since"]:
                            await ws.send(msg("healthDataUpdate", u))
        except websockets.ConnectionClosed:
            pass
        self.closes.append(ws.close_code)

    async def push(self, u, deliver=True):
        self.updates.append(u)
        if deliver:
            await self.ws.send(msg("healthDataUpdate", u))


async def until(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        await asyncio.sleep(0.02)
    return cond()


async def main():
    b = Backend()
    server = await websockets.serve(b.handler, "127.0.0.1", 0, process_request=b.process_request,
                                    create_protocol=b.proto)
    port = server.sockets[0].getsockname()[1]
    url = "ws://127.0.0.1:%d/ws" % port

    # no token: the document's authenticationRequired, no connection made
    p = await asyncio.create_subprocess_exec(PROG, url, stdout=asyncio.subprocess.PIPE)
    procs.append(p)
    out, _ = await asyncio.wait_for(p.communicate(), 5)
    check(p.returncode == 1 and b"Authentication required for WebSocket connection" in out and not b.auth,
          "without a token: authenticationRequired, exit 1, no request")

    cl = Proc(await asyncio.create_subprocess_exec(
        PROG, url, "--token", TOKEN, "--ping-ms", "200", "--backoff-ms", "100",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
    i = await cl.wait(r"^connectionAck sessionId=s-1 serverTime=2026-12-06T10:00:00Z capabilities=3$")
    a, c = await cl.wait(r"^state connecting$"), await cl.wait(r"^state connected$")
    check(0 <= a < c < i,
          "states connecting, connected; connectionAck decoded (sessionId, serverTime, 3 capabilities)")
    check(b.auth == [("/ws", "Bearer " + TOKEN)], "upgrade carries Authorization: Bearer <token> (%s)" % b.auth)

    # typed messages
    t1, t2, t3, t4, t5 = ("2026-12-06T10:00:%02dZ" % s for s in (1, 2, 3, 4, 5))
    await b.push(update(1, t1))
    i = await cl.wait(r"^healthDataUpdate ")
    check(i >= 0 and cl.lines[i] == 'healthDataUpdate id=u1 timestamp=%s isUrgent=false source=healthkit '
          'data={"heartRate":61}' % t1, "healthDataUpdate decoded: id, timestamp, isUrgent, source, data")
    await b.ws.send(msg("notification", {"id": "n1", "type": "alert", "title": "Heart rate", "body": "High"}))
    i = await cl.wait(r"^notification ")
    check(i >= 0 and cl.lines[i] == "notification alert id=n1 title=Heart rate body=High",
          "notification decoded with its type (alert), id, title, body")
    await b.ws.send(msg("syncRequest", {"id": "r1", "type": "fullSync", "entities": None, "lastSyncTimestamp": None}))
    i = await cl.wait(r"^syncRequest fullSync id=r1$")
    ok = await until(lambda: any(m.get("type") == "syncResponse" for m in b.inbox))
    resp = [m for m in b.inbox if m.get("type") == "syncResponse"]
    check(i >= 0 and ok and resp[0] == {"type": "syncResponse", "requestId": "r1",
                                         "data": {"syncType": "fullSync", "lastUpdate": t1}},
          "syncRequest answered with syncResponse{requestId, data}: %s" % resp[:1])
    await b.ws.send(msg("error", {"message": "quota exceeded"}))
    check(await cl.wait(r"^error Server error: quota exceeded$") >= 0, "error message -> serverError(message)")
    await b.ws.send(msg("surprise", {}))
    check(await cl.wait(r"^error Invalid WebSocket message format$") >= 0, "unknown type -> invalidMessageFormat")
    await b.ws.send("{not json")
    check(await cl.wait(r"^error Failed to decode WebSocket message$") >= 0, "undecodable -> messageDecodingFailed")

    # updates out of order (the document's pitfall 3): since is the newest, not the last
    await b.push(update(3, t3))
    await b.push(update(2, t2, urgent=True))
    i = await cl.wait(r"^healthDataUpdate id=u2 .*isUrgent=true")
    check(i >= 0, "urgent update decoded")

    cl.say("subscribe heart-rate sleep")
    check(await until(lambda: {"type": "subscribe", "channels": ["heart-rate", "sleep"]} in b.inbox),
          'subscribe sent as {"type":"subscribe","channels":[...]}')

    # pings every --ping-ms (30 s by default)
    await until(lambda: len(b.pings) >= 4, 5)
    gaps = [y[0] - x[0] for x, y in zip(b.pings, b.pings[1:])]
    check(len(b.pings) >= 4 and all(0.1 < g < 0.6 for g in gaps[:3]) and len({d for _, d in b.pings}) == len(b.pings),
          "WebSocket pings on the interval, distinct payloads (gaps %s)" % ["%.2f" % g for g in gaps[:3]])

    # background: the socket goes; updates keep coming on the server; foreground asks since the newest seen
    mark = len(cl.lines)
    cl.say("background")
    check(await cl.wait(r"^state disconnected$", mark) >= 0 and await until(lambda: 1001 in b.closes),
          "background: the connection closes with 1001 (going away)")
    await b.push(update(4, t4), deliver=False)
    await b.push(update(5, t5), deliver=False)
    cl.say("foreground")
    r = await cl.wait(r"^requestMissedUpdates since=", mark)
    check(r >= 0 and cl.lines[r] == "requestMissedUpdates since=" + t3 and cl.lines.index("state connected", mark) < r,
          "foreground: reconnected, then asks for updates since the newest seen (t3)")
    check(await until(lambda: {"type": "requestMissedUpdates", "since": t3} in b.inbox),
          'server got {"type":"requestMissedUpdates","since":"%s"}' % t3)
    j = await cl.wait(r"^healthDataUpdate id=u5 ", r)
    replayed = [re.search(r"id=(u\d+)", x).group(1) for x in cl.lines[r:j + 1] if x.startswith("healthDataUpdate")]
    check(j >= 0 and replayed == ["u4", "u5"], "the missed updates u4, u5 replayed, nothing twice (%s)" % replayed)
    check(b.auth[-1] == ("/ws", "Bearer " + TOKEN) and len(b.auth) == 2, "the reconnect sends the token again")

    # a dropped connection: failed(error), reconnecting, connected
    mark = len(cl.lines)
    b.ws.transport.abort()
    f = await cl.wait(r"^state failed\(", mark)
    r = await cl.wait(r"^state reconnecting attempt=1 delay=100ms$", mark)
    c = await cl.wait(r"^state connected$", mark)
    check(0 <= f < r < c, "drop: failed(error), reconnecting attempt 1 after 100 ms, connected")

    cl.say("metrics")
    i = await cl.wait(r"^metrics ", mark)
    m = dict(re.findall(r"(\w+)=(\S+)", cl.lines[i])) if i >= 0 else {}
    m["lastError"] = cl.lines[i].split("lastError=", 1)[1] if i >= 0 else ""
    check(int(m.get("messagesReceived", 0)) >= 11 and int(m.get("messagesSent", 0)) >= 3
          and int(m.get("reconnectCount", 0)) >= 2 and int(m.get("pings", 0)) >= 3
          and int(m.get("averageLatencyMs", -1)) >= 0 and int(m.get("connectionUptimeMs", 0)) > 500
          and m["lastError"] == "Failed to decode WebSocket message", "metrics: counts, reconnects, latency, uptime, lastError (%s)" % m)

    # the backend goes away for good: attempts 1-5 at 100, 200, 400, 800, 1600 ms, then give up
    mark = len(cl.lines)
    server.close()
    b.ws.transport.abort()
    await server.wait_closed()
    g = await cl.wait(r"^error Failed to reconnect after multiple attempts$", mark, timeout=10)
    tries = [re.search(r"attempt=(\d+) delay=(\d+)ms", x) for x in cl.lines[mark:g if g >= 0 else None]]
    tries = [(int(t.group(1)), int(t.group(2))) for t in tries if t]
    check(tries == [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1600)],
          "reconnect with exponential backoff, 5 attempts: %s" % tries)
    check(g >= 0, "then reconnectExhausted: 'Failed to reconnect after multiple attempts'")
    mark = len(cl.lines)
    cl.say("quit")
    await asyncio.wait_for(cl.p.wait(), 5)
    check(cl.p.returncode == 0 and await cl.wait(r"^metrics .*lastError=Failed to reconnect", mark, 2) >= 0,
          "quit: metrics printed on exit, exit 0")


seedlib.build(PROG)
seedlib.run_async(main, 50)
