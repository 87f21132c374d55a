#!/usr/bin/env python3
# PoV (seed 004) end to end: examples/seeds/pov/pov_server driven by Python
# websockets clients and plain HTTP requests, replaying what the document
# describes: the 1-hour token from GET /api/auth/ws-token (accessToken
# cookie), ?token= at the upgrade (missing, bad and expired refused; one
# expiring on an open connection closed with 4001),
# subscribe/unsubscribe acks, activities to that PoV's subscribers only, the
# JSON ping/pong, and the error messages. Ends with "N passed, M failed".
import asyncio, base64, hashlib, hmac, json, time
import seedlib
from seedlib import check, recv, refused

websockets = seedlib.need_websockets()
PROG = "build/seeds/pov/pov_server"
SECRET = "pov-test-secret"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(claims, secret=SECRET):
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64u(sig)


def verify(token):  # the claims when the HS256 signature is SECRET's, else None
    try:
        h, b, s = token.split(".")
        want = hmac.new(SECRET.encode(), (h + "." + b).encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(b64u(want), s):
            return None
        return json.loads(base64.urlsafe_b64decode(b + "=" * (-len(b) % 4)))
    except ValueError:
        return None


def req(port, method, path, cookie=None, body=None):
    hdrs = {"Cookie": "theme=dark; accessToken=" + cookie} if cookie else {}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    return seedlib.request(port, method, path, body, hdrs)


async def nothing_then_pong(ws):  # nothing pending: a ping's pong is the next message
    await ws.send(json.dumps({"type": "ping"}))
    return await recv(ws)


async def main(port):
    base = "ws://127.0.0.1:%d/ws" % port
    now = int(time.time())
    alice_at = sign({"userId": "alice", "email": "alice@example.com", "role": "admin", "exp": now + 600})
    bob_at = sign({"userId": "bob", "email": "bob@example.com", "role": "viewer", "exp": now + 600})

    # --- the token endpoint ---
    st, body = req(port, "GET", "/api/auth/ws-token")
    check(st == 401, "GET /api/auth/ws-token without the accessToken cookie: 401 (%s)" % st)
    st, body = req(port, "GET", "/api/auth/ws-token", cookie=sign({"userId": "alice"}, "other-secret"))
    check(st == 401, "an access token signed with another secret: 401 (%s)" % st)
    st, body = req(port, "GET", "/api/auth/ws-token", cookie=alice_at)
    tok = body.get("token") if st == 200 and isinstance(body, dict) else None
    claims = verify(tok) if tok else None
    check(claims is not None, "200 {\"token\": ...} signed HS256 with the secret (%s %r)" % (st, body))
    claims = claims or {}
    check(claims.get("userId") == "alice" and claims.get("email") == "alice@example.com"
          and claims.get("role") == "admin", "the token carries userId, email, role: %r" % claims)
    check(claims.get("exp", 0) - claims.get("iat", 0) == 3600 and abs(claims.get("exp", 0) - (now + 3600)) <= 5,
          "the token expires in 1 hour (iat %s, exp %s)" % (claims.get("iat"), claims.get("exp")))
    bob_tok = (req(port, "GET", "/api/auth/ws-token", cookie=bob_at)[1] or {}).get("token", "")

    # --- ?token= at the upgrade ---
    check(await refused(base) == 401, "upgrade without ?token=: 401")
    check(await refused(base + "?token=") == 401, "upgrade with an empty token: 401")
    check(await refused(base + "?token=" + sign({"userId": "alice", "exp": now + 600}, "x")) == 401,
          "upgrade with a token of another secret: 401")
    check(await refused(base + "?token=" + sign({"userId": "alice", "iat": now - 3700, "exp": now - 100})) == 401,
          "upgrade with an expired token: 401")

    # a token that expires while its connection is open (exp in 1 to 2 s; the
    # server runs with --token-grace-ms 200): closed with 4001 at the end
    short = await websockets.connect(base + "?token=" + sign({"userId": "carol", "exp": now + 2}), open_timeout=5)
    await short.send(json.dumps({"type": "ping"}))
    check(await recv(short) == {"type": "pong"}, "a token 2 s from its exp is accepted and works")

    async with websockets.connect(base + "?token=" + tok, open_timeout=5) as a, \
            websockets.connect(base + "?token=" + bob_tok, open_timeout=5) as b:
        check(True, "upgrade with the issued tokens opens")
        # --- ping/pong ---
        await a.send(json.dumps({"type": "ping"}))
        check(await recv(a) == {"type": "pong"}, "{type: ping} -> {type: pong}")
        # --- subscriptions ---
        await a.send(json.dumps({"type": "subscribe", "povId": "pov-1"}))
        check(await recv(a) == {"type": "subscribed", "povId": "pov-1"}, "subscribe pov-1 -> subscribed ack")
        await b.send(json.dumps({"type": "subscribe", "povId": "pov-2"}))
        check(await recv(b) == {"type": "subscribed", "povId": "pov-2"}, "subscribe pov-2 -> subscribed ack")
        act = {"id": "act-1", "type": "document", "action": "created", "povId": "pov-1", "userId": "mallory",
               "title": "Doc added", "message": "alice added a doc", "severity": "info", "actionUrl": "/pov/1"}
        st, body = req(port, "POST", "/api/activities", cookie=alice_at, body=json.dumps(act))
        check(st == 200 and body == {"delivered": 1}, "POST /api/activities for pov-1: delivered to 1 (%s %r)" % (st, body))
        m = await recv(a)
        want = dict(act, userId="alice")  # the poster's id, not the body's
        check(m == {"type": "activity", "data": want}, "pov-1's subscriber gets {type: activity, data}: %r" % m)
        check(await nothing_then_pong(b) == {"type": "pong"}, "pov-2's subscriber got nothing of pov-1")
        # a second subscriber of pov-1 gets the next one too, pov-2's activity only b
        await b.send(json.dumps({"type": "subscribe", "povId": "pov-1"}))
        check(await recv(b) == {"type": "subscribed", "povId": "pov-1"}, "b subscribes pov-1 too")
        st, body = req(port, "POST", "/api/activities", cookie=bob_at, body=json.dumps(dict(act, id="act-2")))
        ma, mb = await recv(a), await recv(b)
        check(body == {"delivered": 2} and ma and mb and ma["data"]["id"] == "act-2" == mb["data"]["id"]
              and mb["data"]["userId"] == "bob", "both subscribers of pov-1 get act-2 (%r)" % body)
        st, body = req(port, "POST", "/api/activities", cookie=bob_at, body=json.dumps(dict(act, id="act-3", povId="pov-2")))
        mb = await recv(b)
        check(body == {"delivered": 1} and mb and mb["data"]["id"] == "act-3", "pov-2's activity reaches b")
        check(await nothing_then_pong(a) == {"type": "pong"}, "a (not subscribed to pov-2) got nothing of it")
        # --- unsubscribe ---
        await a.send(json.dumps({"type": "unsubscribe", "povId": "pov-1"}))
        check(await recv(a) == {"type": "unsubscribed", "povId": "pov-1"}, "unsubscribe pov-1 -> unsubscribed ack")
        st, body = req(port, "POST", "/api/activities", cookie=bob_at, body=json.dumps(dict(act, id="act-4")))
        check(body == {"delivered": 1}, "after a's unsubscribe pov-1 has 1 subscriber (%r)" % body)
        check((await recv(b) or {}).get("data", {}).get("id") == "act-4", "b still gets pov-1's act-4")
        check(await nothing_then_pong(a) == {"type": "pong"}, "a got nothing after unsubscribing")
        # --- error messages ---
        await a.send("not json")
        check(await recv(a) == {"type": "error", "message": "Invalid message format"}, "non-JSON -> error message")
        await a.send(json.dumps({"type": "dance"}))
        check(await recv(a) == {"type": "error", "message": "Unknown message type"}, "unknown type -> error message")
        await a.send(json.dumps({"type": "subscribe"}))
        check(await recv(a) == {"type": "error", "message": "povId is required"}, "subscribe without povId -> error")
        await a.send(json.dumps({"type": "subscribe", "povId": 7}))
        check(await recv(a) == {"type": "error", "message": "povId is required"}, "a povId that is not a string -> error")
        check(a.open, "the connection stays open after bad input")
        # --- the activity endpoint's own checks ---
        st, _ = req(port, "POST", "/api/activities", body=json.dumps(act))
        check(st == 401, "POST /api/activities without the cookie: 401 (%s)" % st)
        st, _ = req(port, "POST", "/api/activities", cookie=alice_at, body=json.dumps({"title": "no pov"}))
        check(st == 400, "an activity without povId: 400 (%s)" % st)

    try:
        await asyncio.wait_for(short.wait_closed(), 8)
    except asyncio.TimeoutError:
        pass
    check(short.close_code == 4001, "the connection whose token expired is closed with 4001 (%s, %.1f s after exp)"
          % (short.close_code, time.time() - (now + 2)))


seedlib.build(PROG)
seedlib.run_with_server([PROG, "--port", "0", "--jwt-secret", SECRET, "--token-grace-ms", "200"], main, 40)
seedlib.finish()
