#!/usr/bin/env python3
"""Seed "Phase 20" (002_c09cee35ec0f687f) end to end: examples/seeds/phase20's
server and client, driven by the client's stdin and by Python `websockets`
clients speaking the document's {type, payload} messages. Checks the five
connection states, the offline queue (sent after the reconnect, in order),
ping-pong latency, channels, presence with metadata, data sync with a
snapshot on subscribe, and reconnect giving up after 5 attempts.
127.0.0.1 only, ports from the OS; stops only the processes it started."""
import asyncio, base64, hashlib, hmac, json, re, time

import seedlib
from seedlib import Proc, check

websockets = seedlib.need_websockets()
SECRET = "phase20-test-secret"


def jwt(claims):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(b'{"alg":"HS256","typ":"JWT"}') + "." + enc(json.dumps(claims).encode())
    return head + "." + enc(hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest())


async def start_server(port=0):
    p = Proc(await asyncio.create_subprocess_exec(
        "build/seeds/phase20/phase20_server", "--port", str(port), "--jwt-secret", SECRET,
        stdout=asyncio.subprocess.PIPE))
    i = await p.wait(r"^listening on 127\.0\.0\.1:\d+$")
    return p, int(p.lines[i].rsplit(":", 1)[1]) if i >= 0 else 0


async def ws(port, sub, name):
    return await websockets.connect("ws://127.0.0.1:%d/?token=%s" % (port, jwt({"sub": sub, "name": name})))


async def say(c, type_, payload):
    await c.send(json.dumps({"type": type_, "payload": payload}))


async def recv(c, type_, pred=lambda m: True, timeout=3.0):
    """the next message of that type for which pred holds (others skipped), or None"""
    end = time.monotonic() + timeout
    try:
        while True:
            m = json.loads(await asyncio.wait_for(c.recv(), max(0.01, end - time.monotonic())))
            if m.get("type") == type_ and pred(m):
                return m
    except (asyncio.TimeoutError, websockets.ConnectionClosed):
        return None


def payload_of(line):
    return json.loads(line.split(" ", 2)[2])


async def main():
    server, port = await start_server()
    check(port > 0, "server prints 'listening on 127.0.0.1:PORT'")
    url = "ws://127.0.0.1:%d/?token=%s" % (port, jwt({"sub": "ann", "name": "Ann Lee"}))
    cl = Proc(await asyncio.create_subprocess_exec(
        "build/seeds/phase20/phase20_client", url, "--heartbeat-ms", "300", "--reconnect-ms", "200",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
    a = await cl.wait(r"^status connecting$")
    b = await cl.wait(r"^status connected$")
    check(0 <= a < b, "client states: connecting, then connected")

    # channels, presence with metadata, snapshot on subscribe
    cl.say("subscribe tasks")
    i = await cl.wait(r"^snapshot tasks ")
    check(i >= 0 and payload_of(cl.lines[i]) == {"records": []}, "subscribe answered with an empty snapshot")
    bob = await ws(port, "bob", "Bob Ray")
    await say(bob, "subscribe", {"channel": "tasks"})
    snap = await recv(bob, "snapshot")
    check(snap is not None and snap["channel"] == "tasks" and isinstance(snap["timestamp"], int),
          "python subscriber gets {type:snapshot, channel, payload, timestamp}")
    i = await cl.wait(r'^presence tasks .*"onlineCount":2')
    users = payload_of(cl.lines[i])["users"] if i >= 0 else []
    meta = {u["id"]: u for u in users}
    check(set(meta) == {"ann", "bob"} and meta["bob"]["name"] == "Bob Ray" and meta["ann"]["name"] == "Ann Lee"
          and meta["bob"]["status"] == "online" and meta["bob"]["joinedAt"] > 1.6e12,
          "client sees presence: 2 online, with name/status/joinedAt metadata")
    await say(bob, "presence", {"channel": "tasks", "status": "away"})
    i = await cl.wait(r'^presence tasks .*"event":"away"')
    check(i >= 0 and {u["id"]: u["status"] for u in payload_of(cl.lines[i])["users"]} == {"ann": "online", "bob": "away"},
          "presence status update reaches the client")
    cl.say("presence tasks busy")
    p = await recv(bob, "presence", lambda m: m["payload"]["event"] == "busy")
    check(p is not None and {u["id"]: u["status"] for u in p["payload"]["users"]} == {"ann": "busy", "bob": "away"},
          "client's updateStatus('busy') reaches the others")

    # channel messages in the document's broadcast shape
    cl.say('send tasks message {"text":"hello"}')
    m = await recv(bob, "message")
    check(m is not None and m["payload"] == {"text": "hello"} and m["channel"] == "tasks" and isinstance(m["timestamp"], int),
          "channel_message broadcast as {type: event, payload, timestamp}")
    await say(bob, "channel_message", {"channel": "tasks", "event": "user:typing", "payload": {"userName": "Bob"}})
    i = await cl.wait(r"^user:typing tasks ")
    check(i >= 0 and payload_of(cl.lines[i]) == {"userName": "Bob"}, "client receives a channel event by its name")

    # data sync: insert / update / delete
    cl.say('insert tasks task {"title":"Write tests","completed":false}')
    s = await recv(bob, "sync")
    rec = s["payload"].get("record", {}) if s else {}
    check(s is not None and s["payload"]["action"] == "insert" and rec.get("title") == "Write tests" and rec.get("id"),
          "insert broadcast with a server-given id")
    rid = rec.get("id", "?")
    await say(bob, "sync", {"channel": "tasks", "action": "update", "id": rid, "changes": {"completed": True}})
    i = await cl.wait(r'^sync tasks .*"action":"update"')
    check(i >= 0 and payload_of(cl.lines[i])["record"] == {"id": rid, "title": "Write tests", "completed": True},
          "update merged and seen by the client")
    cl.say('insert tasks task {"title":"Second"}')
    i = await cl.wait(r"^data tasks 2 records$")
    check(i >= 0, "client keeps its record count (2 after two inserts)")
    cl.say("delete tasks " + rid)
    s = await recv(bob, "sync", lambda m: m["payload"]["action"] == "delete")
    check(s is not None and s["payload"] == {"action": "delete", "id": rid}, "delete broadcast")
    carl = await ws(port, "carl", "Carl")
    await say(carl, "subscribe", {"channel": "tasks"})
    snap = await recv(carl, "snapshot")
    check(snap is not None and [r["title"] for r in snap["payload"]["records"]] == ["Second"],
          "a late subscriber's snapshot holds the current records")
    await carl.close()

    # latency: the document's ping/pong
    await say(bob, "ping", {"timestamp": 1234})
    pong = await recv(bob, "pong")
    check(pong == {"type": "pong", "timestamp": 1234}, "server answers ping with {type:pong, timestamp}")
    i = await cl.wait(r"^latency \d+ ms$")
    j = await cl.wait(r"^latency \d+ ms$", i + 1)
    check(0 <= i < j, "client measures latency on its heartbeat")
    await bob.close()

    # offline queue: the server goes away, three inserts wait, go out in order after the reconnect
    mark = len(cl.lines)
    server.p.kill()
    await server.p.wait()
    d = await cl.wait(r"^status disconnected", mark)
    r = await cl.wait(r"^status reconnecting attempt=1 ", mark)
    check(0 <= d < r, "connection lost: disconnected, then reconnecting")
    for t in ("q1", "q2", "q3"):
        cl.say('insert tasks task {"title":"%s"}' % t)
    q = await cl.wait(r"^queued 3$", mark)
    check(q >= 0, "messages sent while disconnected are queued")
    await asyncio.sleep(0.5)
    server, port2 = await start_server(port)
    check(port2 == port, "server back on the same port")
    c = await cl.wait(r"^status connected$", q, timeout=8)
    check(c >= 0, "client reconnects by itself")
    e = await cl.wait(r"^status error", mark)
    check(0 <= e < c, "a failed attempt while the server was down showed the error state")
    # the subscription is a restore message: it goes out before the queue, so the
    # client is subscribed again when its queued inserts land, and sees them
    i = await cl.wait(r"^snapshot tasks ", c)
    titles, k = [], i
    while k >= 0 and len(titles) < 3:
        k = await cl.wait(r'^sync tasks .*"action":"insert"', k + 1)
        if k >= 0:
            titles.append(payload_of(cl.lines[k]).get("record", {}).get("title"))
    check(i >= 0 and titles == ["q1", "q2", "q3"],
          "after the reconnect: resubscribed first, then the queued inserts arrived in order")
    dan = await ws(port, "dan", "Dan")
    await say(dan, "subscribe", {"channel": "tasks"})
    snap = await recv(dan, "snapshot")
    check(snap is not None and [x["title"] for x in snap["payload"]["records"]] == ["q1", "q2", "q3"],
          "another client's snapshot shows q1, q2, q3 in order")
    await dan.close()
    cl.say("stats")
    i = await cl.wait(r"^stats ", c)
    st = dict(kv.split("=", 1) for kv in cl.lines[i].split()[1:]) if i >= 0 else {}
    check(st.get("status") == "connected" and int(st.get("messagesSent", 0)) >= 8
          and int(st.get("messagesReceived", 0)) >= 8 and int(st.get("reconnects", 0)) >= 1
          and int(st.get("latency", -1)) >= 0, "stats: status, latency, messages sent/received, reconnects")

    # give up: 5 attempts with doubling delays, then the error state
    mark = len(cl.lines)
    server.p.kill()
    await server.p.wait()
    f = await cl.wait(r"^status error reconnect attempts exhausted$", mark, timeout=15)
    tries = [re.search(r"attempt=(\d+) delay=(\d+)ms", x) for x in cl.lines[mark:f if f >= 0 else None]]
    tries = [(int(m.group(1)), int(m.group(2))) for m in tries if m]
    check(tries == [(1, 200), (2, 400), (3, 800), (4, 1600), (5, 3200)],
          "reconnect attempts 1-5 with exponential backoff: %s" % tries)
    check(f >= 0, "after 5 attempts the client gives up (error)")
    cl.say("quit")
    try:
        await asyncio.wait_for(cl.p.wait(), 5)
    except asyncio.TimeoutError:
        pass
    check(cl.p.returncode == 0, "client exits on quit")


seedlib.build("build/seeds/phase20/phase20_server", "build/seeds/phase20/phase20_client")
seedlib.run_async(main, 50)
