#!/usr/bin/env python3
"""End-to-end test of examples/seeds/healthmate/healthmate_server (seed 001,
HealthMate): python `websockets` clients on /ws/health, /ws/chat and
/ws/notifications, HS256 tokens signed here with hmac/hashlib/base64, and
urllib for GET /ws/status, GET /ws/connection/{id}/health,
DELETE /ws/connection/{id} and POST /ws/user/{id}/reconnect. Two servers on
127.0.0.1, ports chosen by the OS: one with a short auth deadline, one with
a short idle timeout and 2 connections at most. Only the processes started
here are stopped, by PID; every wait is bounded. A third server with a
short token grace shows expiry and refresh. Ends "N passed, M failed".
"""
import asyncio
import base64
import hashlib
import hmac
import json
import re
import subprocess
import time
import urllib.error
import urllib.request

import seedlib
from seedlib import check

PROG = "build/seeds/healthmate/healthmate_server"
SECRET = "healthmate-test-secret"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(sub, exp_in=3600, secret=SECRET):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + exp_in}).encode())
    sig = hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64(sig)


class Server:
    def __init__(self, *args):
        self.proc, line, self.port = seedlib.start([PROG, "--host", "127.0.0.1", "--port", "0",
                                                    "--jwt-secret", SECRET] + list(args), stderr=subprocess.STDOUT)
        if not line.startswith("listening on 127.0.0.1:") or not self.port:
            self.stop()
            raise RuntimeError("no listening line: %r" % line)

    def stop(self):
        seedlib.stop(self.proc)


def http(srv, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (srv.port, path), method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def main():
    import websockets

    async def recv(ws, t=3.0):
        return json.loads(await asyncio.wait_for(ws.recv(), t))

    async def quiet(ws, t=0.4):
        """None when nothing arrives within t, else the message."""
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), t))
        except asyncio.TimeoutError:
            return None

    async def close_code(ws, t=3.0):
        """Reads until the server closes; the close code (None: still open after t)."""
        try:
            async def drain():
                while True:
                    await ws.recv()
            await asyncio.wait_for(drain(), t)
        except websockets.ConnectionClosed:
            return ws.close_code
        except asyncio.TimeoutError:
            return None

    async def connect(srv, path):
        ws = await websockets.connect("ws://127.0.0.1:%d%s" % (srv.port, path), ping_interval=None,
                                      open_timeout=5, close_timeout=1)
        return ws, await recv(ws)

    async def login(srv, path, user):
        ws, welcome = await connect(srv, path)
        await ws.send(json.dumps({"type": "authenticate", "token": token(user)}))
        return ws, welcome, await recv(ws)

    a = Server("--auth-timeout-ms", "800", "--history", "3")
    b = None
    try:
        # --- connection establishment and authentication ---
        ws, welcome = await connect(a, "/ws/health")
        check(welcome["type"] == "welcome" and isinstance(welcome["data"]["connection_id"], int)
              and welcome["data"]["state"] == "connected" and ISO.match(welcome["timestamp"]),
              "welcome with the connection id, state connected, ISO timestamp")
        await ws.send(json.dumps({"type": "authenticate", "token": token("1")}))
        m = await recv(ws)
        check(m["type"] == "authenticated" and m["data"]["user_id"] == "1"
              and m["data"]["connection_id"] == welcome["data"]["connection_id"],
              "authenticate with a valid HS256 token: authenticated, user 1")
        await ws.close()

        for what, tok in (("wrong secret", token("1", secret="other")),
                          ("expired", token("1", exp_in=-120)),
                          ("not a JWT", "abc.def")):
            ws, _ = await connect(a, "/ws/chat")
            await ws.send(json.dumps({"type": "authenticate", "token": tok}))
            m = await recv(ws)
            check(m["type"] == "error" and m["data"]["code"] == "authentication_failed"
                  and await close_code(ws) == 1008, "token %s: authentication_failed, close 1008" % what)

        ws, _ = await connect(a, "/ws/notifications")
        await ws.send(json.dumps({"type": "subscribe", "subscription": "health_updates"}))
        m = await recv(ws)
        check(m["type"] == "error" and m["data"]["code"] == "authentication_required"
              and await close_code(ws) == 1008, "a first message other than authenticate: close 1008")

        ws, _ = await connect(a, "/ws/health")
        t0 = time.monotonic()
        code = await close_code(ws, 4)
        took = time.monotonic() - t0
        check(code == 1008 and 0.6 <= took <= 2.5,
              "no authenticate within --auth-timeout-ms 800: close 1008 after %.2f s" % took)

        # --- metric streams: updates only to subscribers ---
        sub1, w_sub1, _ = await login(a, "/ws/health", "1")    # user 1, subscribes
        nosub1, w_nosub1, _ = await login(a, "/ws/health", "1")  # user 1, does not
        sub2, _, _ = await login(a, "/ws/health", "2")        # user 2, subscribes
        dev1, _, _ = await login(a, "/ws/health", "1")        # user 1's device, reports
        for s in (sub1, sub2):
            await s.send(json.dumps({"type": "subscribe", "subscription": "health_updates"}))
            m = await recv(s)
        check(m["type"] == "subscribed" and m["data"]["subscription"] == "health_updates",
              "subscribe to health_updates: subscribed")
        reading = {"metric": "heart_rate", "value": 72, "unit": "bpm",
                   "timestamp": "2024-01-01T00:00:00Z"}
        await dev1.send(json.dumps({"type": "health_update", "data": reading}))
        m = await recv(sub1)
        check(m["type"] == "health_update" and m["data"] == reading,
              "health_update reaches the subscribed connection of its user, data as sent")
        check(await quiet(nosub1) is None, "not to the same user's unsubscribed connection")
        check(await quiet(sub2, 0.2) is None and await quiet(dev1, 0.2) is None,
              "not to another user's subscriber, nor to the unsubscribed sender")

        # --- notifications: to every connection of that user, nobody else ---
        n1a, _, _ = await login(a, "/ws/notifications", "1")
        n1b, _, _ = await login(a, "/ws/notifications", "1")
        n2, _, _ = await login(a, "/ws/notifications", "2")
        await dev1.send(json.dumps({"type": "health_update", "data": {
            "metric": "blood_pressure", "value": 120, "unit": "mmHg"}}))
        await recv(sub1)
        check(await quiet(n1a) is None, "blood_pressure 120: no alert")
        await dev1.send(json.dumps({"type": "health_update", "data": {
            "metric": "blood_pressure", "value": 150, "unit": "mmHg"}}))
        got = [await recv(n1a), await recv(n1b)]
        check(all(g["type"] == "notification" and g["notification"]["type"] == "health_alert"
                  and isinstance(g["notification"]["id"], int)
                  and g["notification"]["title"] == "Blood Pressure Alert"
                  and g["notification"]["priority"] == "high"
                  and ISO.match(g["notification"]["created_at"]) for g in got),
              "blood_pressure 150: the document's health_alert on both of user 1's notification sockets")
        m1, m2 = await recv(sub1), await recv(sub1)
        m3 = await recv(nosub1)
        check(m1["type"] == "health_update" and m2["type"] == "notification"
              and m3["type"] == "notification", "and on user 1's health sockets too (all its connections)")
        check(await quiet(n2) is None and await quiet(sub2, 0.2) is None, "user 2 gets no notification")

        # --- chat: history on join, messages to the conversation, typing to the others ---
        x, _, _ = await login(a, "/ws/chat", "4")  # user 1 has 5 connections: the most
        y, _, _ = await login(a, "/ws/chat", "2")
        await x.send(json.dumps({"type": "chat_message", "data": {"message": "early",
                                                                  "conversation_id": "c1"}}))
        m = await recv(x)
        check(m["type"] == "error" and m["data"]["code"] == "not_joined", "chat_message before join: not_joined")
        await x.send(json.dumps({"type": "join", "conversation_id": "c1"}))
        m = await recv(x)
        check(m["type"] == "chat_history" and m["data"] == {"conversation_id": "c1", "messages": []},
              "join a new conversation: empty chat_history")
        await x.send(json.dumps({"type": "chat_message", "data": {"message": "Hello, how can I help you?",
                                                                  "conversation_id": "c1"}}))
        m = await recv(x)
        check(m["type"] == "chat_message" and m["data"] == {"message": "Hello, how can I help you?",
                                                            "sender": "4", "conversation_id": "c1"},
              "chat_message in the document's shape, sender = the user")
        await y.send(json.dumps({"type": "join", "data": {"conversation_id": "c1"}}))
        m = await recv(y)
        msgs = m["data"]["messages"]
        check(m["type"] == "chat_history" and len(msgs) == 1
              and msgs[0]["data"]["message"] == "Hello, how can I help you?",
              "a later join gets the history")
        await y.send(json.dumps({"type": "typing", "conversation_id": "c1", "is_typing": True}))
        m = await recv(x)
        check(m["type"] == "typing" and m["data"] == {"user_id": "2", "conversation_id": "c1",
                                                      "is_typing": True}, "typing reaches the others")
        check(await quiet(y) is None, "typing is not echoed to the typist")
        for i in range(4):
            await y.send(json.dumps({"type": "chat_message", "data": {"message": "m%d" % i,
                                                                      "conversation_id": "c1"}}))
        got = [(await recv(x))["data"]["message"] for _ in range(4)]
        check(got == ["m0", "m1", "m2", "m3"], "messages reach the other member in order")
        z, _, _ = await login(a, "/ws/chat", "3")
        await z.send(json.dumps({"type": "join", "conversation_id": "c1"}))
        m = await recv(z)
        check([h["data"]["message"] for h in m["data"]["messages"]] == ["m1", "m2", "m3"],
              "history on join: the last --history 3, oldest first")

        # --- HTTP: status, connection health, disconnect, reconnect ---
        st, body = http(a, "GET", "/ws/status")
        # open: sub1 nosub1 sub2 dev1 n1a n1b n2 x y z; 6 more came and went before
        check(st == 200 and set(body) == {"status", "active_connections", "total_connections",
                                          "users_online", "subscriptions", "timestamp"}
              and set(body["subscriptions"]) == {"health_updates", "chat", "notifications"}
              and ISO.match(body["timestamp"]), "GET /ws/status: the document's keys, ISO timestamp")
        check(body["status"] == "healthy" and body["active_connections"] == 10
              and body["users_online"] == 4 and body["total_connections"] == 16
              and body["subscriptions"] == {"health_updates": 2, "chat": 3, "notifications": 2},
              "GET /ws/status counts: 10 open, 4 users, pools 2/3/2 (got %s)" % body)

        cid = w_sub1["data"]["connection_id"]
        st, body = http(a, "GET", "/ws/connection/%d/health" % cid)
        h = body.get("health", {})
        check(st == 200 and body["connection_id"] == cid and h.get("state") == "authenticated"
              and h.get("user_id") == "1" and h.get("subscriptions") == ["health_updates"]
              and h.get("is_healthy") is True and h.get("retry_count") == 0
              and h.get("recovery_attempts") == 0 and ISO.match(h.get("connected_at", ""))
              and ISO.match(h.get("last_activity", "")) and h["last_activity"] > h["connected_at"],
              "GET /ws/connection/{id}/health in the document's shape")
        fresh, wf = await connect(a, "/ws/chat")
        st, body = http(a, "GET", "/ws/connection/%d/health" % wf["data"]["connection_id"])
        check(st == 200 and body["health"]["state"] == "connected" and body["health"]["user_id"] is None
              and body["health"]["subscriptions"] == [], "an unauthenticated connection: connected")
        st, body = http(a, "GET", "/ws/connection/999999/health")
        check(st == 404 and "detail" in body, "an unknown connection id: 404")

        st, body = http(a, "DELETE", "/ws/connection/%d" % w_nosub1["data"]["connection_id"])
        check(st == 200 and await close_code(nosub1) == 1000, "DELETE /ws/connection/{id}: closed 1000")
        st, body = http(a, "GET", "/ws/connection/%d/health" % w_nosub1["data"]["connection_id"])
        check(st == 404, "and then it is gone")

        st, body = http(a, "POST", "/ws/user/1/reconnect")
        codes = [await close_code(s) for s in (sub1, dev1, n1a, n1b)]
        check(st == 200 and body["connections"] == 4 and codes == [1012] * 4,
              "POST /ws/user/1/reconnect: all 4 of user 1's connections closed 1012 (got %s)" % codes)
        await sub2.send(json.dumps({"type": "subscribe", "subscription": "health_updates"}))
        check((await recv(sub2))["type"] == "subscribed" and await quiet(n2, 0.2) is None,
              "user 2's connections stay")

        # --- 5 connections per user: the 6th is refused ---
        five = [await login(a, "/ws/notifications", "9") for _ in range(5)]
        check(all(f[2]["type"] == "authenticated" for f in five), "user 9: 5 connections authenticated")
        six, _, m = await login(a, "/ws/chat", "9")
        check(m["type"] == "error" and m["data"]["code"] == "connection_limit_exceeded"
              and await close_code(six) == 1008, "the 6th: connection_limit_exceeded, close 1008")
        await five[0][0].close()
        await asyncio.sleep(0.2)
        again, _, m = await login(a, "/ws/health", "9")
        check(m["type"] == "authenticated", "after one closes, a new one is let in")

        # --- individual metric streams (user 8) ---
        hall, _, _ = await login(a, "/ws/health", "8")  # all of user 8's metrics
        hhr, _, _ = await login(a, "/ws/health", "8")   # heart_rate only
        hboth, _, _ = await login(a, "/ws/health", "8")  # all, and heart_rate too
        dev8, _, _ = await login(a, "/ws/health", "8")
        for s, metric in ((hall, None), (hhr, "heart_rate"), (hboth, None), (hboth, "heart_rate")):
            sub = {"type": "subscribe", "subscription": "health_updates"}
            if metric:
                sub["metric"] = metric
            await s.send(json.dumps(sub))
            m = await recv(s)
        check(m["type"] == "subscribed" and m["data"] == {"subscription": "health_updates",
                                                          "metric": "heart_rate"},
              "subscribe to one metric stream: subscribed, with its metric")
        await dev8.send(json.dumps({"type": "health_update", "data": {"metric": "heart_rate",
                                                                      "value": 70}}))
        got = [await recv(hall), await recv(hhr), await recv(hboth)]
        check(all(g["type"] == "health_update" and g["data"]["metric"] == "heart_rate" for g in got),
              "a heart_rate reading reaches the all-metrics and the heart_rate subscribers")
        check(await quiet(hboth) is None, "a connection on both streams gets it once")
        await dev8.send(json.dumps({"type": "health_update", "data": {"metric": "steps",
                                                                      "value": 1000}}))
        got = [await recv(hall), await recv(hboth)]
        check(all(g["data"]["metric"] == "steps" for g in got) and await quiet(hhr) is None,
              "a steps reading: to the all-metrics subscribers, not to the heart_rate-only one")
        await hhr.send(json.dumps({"type": "unsubscribe", "subscription": "health_updates",
                                   "metric": "heart_rate"}))
        m = await recv(hhr)
        await dev8.send(json.dumps({"type": "health_update", "data": {"metric": "heart_rate",
                                                                      "value": 71}}))
        await recv(hall)
        check(m["type"] == "unsubscribed" and await quiet(hhr) is None,
              "unsubscribe from heart_rate: unsubscribed, no more heart_rate readings")

        # --- only the document's management routes: no invented ones ---
        st, body = http(a, "POST", "/ws/user/2/notify", {"title": "t", "message": "m"})
        check(st == 404 and "detail" in body and await quiet(n2, 0.2) is None,
              "POST /ws/user/{id}/notify (not in the document): 404, nothing sent")

        # --- token expiry on an open connection; refresh with a fresh token ---
        c = Server("--token-grace-ms", "600")
        try:
            async def short_login(path, user, exp_in):
                ws, _ = await connect(c, path)
                await ws.send(json.dumps({"type": "authenticate", "token": token(user, exp_in)}))
                return ws, await recv(ws)
            lapse, m1 = await short_login("/ws/health", "11", 1)
            renew, m2 = await short_login("/ws/chat", "12", 1)
            await renew.send(json.dumps({"type": "authenticate", "token": token("12", 3600)}))
            m3 = await recv(renew)
            t0 = time.monotonic()
            code = await close_code(lapse, 5)
            took = time.monotonic() - t0
            check(m1["type"] == m2["type"] == m3["type"] == "authenticated" and code == 4001
                  and took <= 3.5, "a token expiring on an open connection: close 4001 after "
                  "exp and --token-grace-ms 600 (%.2f s)" % took)
            await renew.send(json.dumps({"type": "join", "conversation_id": "r"}))
            check((await recv(renew))["type"] == "chat_history" and renew.open,
                  "authenticate again with a fresh token (token refresh): the connection stays")
            await renew.send(json.dumps({"type": "authenticate", "token": token("13")}))
            m = await recv(renew)
            check(m["type"] == "error" and m["data"]["code"] == "authentication_failed"
                  and await close_code(renew) == 1008,
                  "authenticate again as another user after joining: refused, close 1008")
        finally:
            c.stop()

        # --- 1 h idle, shortened; connections at most, lowered ---
        b = Server("--idle-timeout-ms", "1000", "--max-connections", "2")
        q, _, _ = await login(b, "/ws/health", "5")
        t0 = time.monotonic()

        async def timed_close(ws):
            code = await close_code(ws, 4)
            return code, time.monotonic() - t0
        idle = asyncio.ensure_future(timed_close(q))
        busy, _, _ = await login(b, "/ws/health", "6")
        for _ in range(4):  # a message every 0.4 s keeps busy open
            await asyncio.sleep(0.4)
            await busy.send(json.dumps({"type": "subscribe", "subscription": "health_updates"}))
            await recv(busy)
        code, took = await idle
        check(code == 1001 and 0.8 <= took <= 2.5,
              "no message for --idle-timeout-ms 1000: close 1001 after %.2f s" % took)
        check(busy.open, "a connection sending messages is not idle")
        third = None
        r, _, _ = await login(b, "/ws/health", "7")
        try:  # busy and r: two, the most this server takes
            third, _ = await connect(b, "/ws/chat")
        except Exception:
            pass
        check(third is None, "--max-connections 2: a third connection is refused")
    finally:
        a.stop()
        if b:
            b.stop()


seedlib.need_websockets()
seedlib.build(PROG)
try:
    asyncio.run(asyncio.wait_for(main(), 50))
except Exception as e:  # a wait that ran out, a server that did not start
    check(False, "%s: %s" % (type(e).__name__, e))
seedlib.finish()
