/* chat_server - the rtws realtime demo: rooms, presence, typing indicators,
   history and resume, served to browsers from one port.

   usage: ./chat_server [--host H] [--port P] [--jwt-secret S] [--allow-origin URL]...
                        [--memory-budget MIB] [--max-channels N] [--channel-ttl S]
                        [--handshake-timeout MS] [--message-timeout-ms MS]
                        [--redis URL] [--redis-prefix P]
     --host H         address to listen on (default 127.0.0.1; "" for every address)
     --port P         port (default 8080; 0: the OS picks a free one)
     --jwt-secret S   require an HS256 JWT (sub = user id) from every client, as
                      ?token=, "Authorization: Bearer" or an auth message; the
                      page passes on the token of its own URL: http://H:P/?token=JWT
                      Without it every client is anonymous and gets an id.
     --allow-origin URL  a browser page origin that may connect, e.g.
                      http://chat.example:8080 (repeatable, up to 16; default:
                      http://127.0.0.1:P and http://localhost:P, plus http://H:P
                      for a named --host H, P being the port listened on).
                      Upgrades with any other Origin get 403; clients that send
                      no Origin (not browsers) are let through.
     --memory-budget MIB  bytes of every send queue, receive buffer, channel,
                      history message and session together, in MiB (default 256;
                      0: unlimited). Near it new channels are refused
                      ("overloaded"), then history is dropped oldest first, then
                      the largest send queues are closed with 1013.
     --max-channels N channels that exist at once (default 10000; 100 per user)
     --channel-ttl S  a channel without subscribers is forgotten, history and
                      all, S seconds after its last publish (default 300)
     --handshake-timeout MS  drop a connection whose opening handshake is not
                      done MS ms after it connected (default 10000: slowloris)
     --message-timeout-ms MS  close with 1008 a connection whose message is
                      not whole MS ms after its first byte (default 30000; 0: off)
     --redis URL      run as one node of a cluster: channels, seq numbers,
                      history and publish ids live in Redis
                      (redis://[user:pass@]host[:port][/db]); every node with
                      the same URL and prefix shares them (make run-cluster)
     --redis-prefix P key prefix in Redis (default rtws)
     --help           print this and exit

   GET /            the chat page (embedded below; plain HTML, CSS and JS)
   GET /rtws.js     the page's realtime client, clients/js/rtws.js (compiled in)
   GET /ws          the WebSocket endpoint (protocol: docs/PROTOCOL.md)
   GET /ws/status   JSON counters of the router

   The page joins channel "room:<name>" (default room "lobby"), lists who is
   there from the subscribed/presence messages, and shows typing indicators:
   a typing client sets its presence status to "typing" and back to "online",
   which the router forwards to the room like any status (nothing special on
   the server, and nothing typed lands in the history). Its client, rtws.js,
   keeps the session id from welcome and reconnects with ?session= and
   since=<last seq>, so missed messages are replayed after a network hiccup.

   Limits: 1000 connections, 5 per authenticated user, 1 h idle timeout, a
   message must be whole 30 s after its first byte (else 1008), 20
   messages/s per connection (burst 40, announced in welcome; refusals carry
   retry_after_ms, and more than 20 of them beyond the messages let through
   close it with 1008), heartbeat every 30 s, a 256 MiB memory budget,
   10000 channels (100 created per user), channels forgotten 5 min after
   their last subscriber left. Browser upgrades must come from an allowed
   origin (--allow-origin; docs/GUIDE.md says why a loopback server still
   checks Origin).
   Prints "listening on H:P" and the URL to open once ready. SIGINT/SIGTERM
   close every connection with 1001 and exit. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rtws_ctx *ctx; /* SIGINT, SIGTERM: rtws_ctx_run shuts it down */
static void on_signal(int sig) { (void)sig, rtws_ctx_stop(ctx); }

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [--host H] [--port P] [--jwt-secret S] [--allow-origin URL]...\n"
            "          [--memory-budget MIB] [--max-channels N] [--channel-ttl S]\n"
            "          [--handshake-timeout MS] [--message-timeout-ms MS]\n"
            "          [--redis URL] [--redis-prefix P]\n"
            "The rtws realtime demo: rooms, presence, typing indicators, history and\n"
            "resume, served to browsers from one port.\n"
            "  --host H         address to listen on (default 127.0.0.1; \"\" for every address)\n"
            "  --port P         port (default 8080; 0: the OS picks a free one)\n"
            "  --jwt-secret S   require an HS256 JWT (sub = user id) from every client, as\n"
            "                   ?token=, \"Authorization: Bearer\" or an auth message; the\n"
            "                   page passes on the token of its own URL: http://H:P/?token=JWT\n"
            "                   Without it every client is anonymous and gets an id.\n"
            "  --allow-origin URL  a browser page origin that may connect, e.g.\n"
            "                   http://chat.example:8080 (repeatable, up to 16; default:\n"
            "                   http://127.0.0.1:P and http://localhost:P, plus http://H:P\n"
            "                   for a named --host H, P being the port listened on).\n"
            "                   Upgrades with any other Origin get 403; clients that send\n"
            "                   no Origin (not browsers) are let through.\n"
            "  --memory-budget MIB  bytes of every send queue, receive buffer, channel,\n"
            "                   history message and session together, in MiB (default 256;\n"
            "                   0: unlimited). Near it new channels are refused\n"
            "                   (\"overloaded\"), then history is dropped oldest first, then\n"
            "                   the largest send queues are closed with 1013.\n"
            "  --max-channels N channels that exist at once (default 10000; 100 per user)\n"
            "  --channel-ttl S  a channel without subscribers is forgotten, history and\n"
            "                   all, S seconds after its last publish (default 300)\n"
            "  --handshake-timeout MS  drop a connection whose opening handshake is not\n"
            "                   done MS ms after it connected (default 10000: slowloris)\n"
            "  --message-timeout-ms MS  close with 1008 a connection whose message is\n"
            "                   not whole MS ms after its first byte (default 30000; 0: off)\n"
            "  --redis URL      run as one node of a cluster: channels, seq numbers,\n"
            "                   history and publish ids live in Redis\n"
            "                   (redis://[user:pass@]host[:port][/db]); every node with\n"
            "                   the same URL and prefix shares them (make run-cluster)\n"
            "  --redis-prefix P key prefix in Redis (default rtws)\n"
            "  --help           print this and exit\n"
            "GET / serves the chat page (its client, rtws.js, at /rtws.js), GET /ws is the\n"
            "WebSocket endpoint (docs/PROTOCOL.md), GET /ws/status the router's counters\n"
            "as JSON.\n"
            "Prints \"listening on H:P\" and the URL to open once ready. SIGINT/SIGTERM\n"
            "close every connection with 1001 and exit.\n",
            argv0);
}

/* The page, one line per string (C99 only promises string literals of 4095
   bytes, so the page is not one literal); joined with newlines at start-up. */
static const char *const page_lines[] = {
    "<!doctype html>",
    "<html lang='en'>",
    "<head>",
    "<meta charset='utf-8'>",
    "<meta name='viewport' content='width=device-width, initial-scale=1'>",
    "<title>rtws chat</title>",
    "<link rel='icon' href='data:,'>",
    "<style>",
    "* { box-sizing: border-box; }",
    "body { margin: 0; font: 15px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d232b; background: #eef1f5; }",
    "header { display: flex; align-items: center; gap: 12px; padding: 10px 16px; background: #22303f; color: #fff; }",
    "header h1 { font-size: 17px; margin: 0; font-weight: 600; }",
    "#status { margin-left: auto; font-size: 13px; padding: 3px 10px; border-radius: 12px; background: #5b6775; }",
    "#status.ok { background: #2f8f4e; }",
    "#status.wait { background: #b7791f; }",
    "#status.bad { background: #b83232; }",
    "main { display: grid; grid-template-columns: 1fr 220px; gap: 12px; max-width: 980px; margin: 12px auto; padding: 0 12px; height: calc(100vh - 70px); }",
    ".card { background: #fff; border: 1px solid #d7dde5; border-radius: 8px; display: flex; flex-direction: column; min-height: 0; }",
    ".bar { display: flex; gap: 8px; padding: 10px; border-bottom: 1px solid #e4e8ee; align-items: center; }",
    ".bar label { font-size: 13px; color: #5b6775; }",
    "input { font: inherit; padding: 6px 9px; border: 1px solid #c5cdd8; border-radius: 6px; min-width: 0; }",
    "button { font: inherit; padding: 6px 14px; border: 0; border-radius: 6px; background: #2f6fbd; color: #fff; cursor: pointer; }",
    "button:disabled { background: #9fb3cc; cursor: default; }",
    "#room { width: 140px; }",
    "#log { flex: 1; overflow-y: auto; padding: 10px 12px; min-height: 0; }",
    ".msg { padding: 3px 0; word-wrap: break-word; }",
    ".msg .time { color: #8a94a1; font-size: 12px; margin-right: 6px; font-variant-numeric: tabular-nums; }",
    ".msg .from { font-weight: 600; margin-right: 6px; color: #2f6fbd; }",
    ".msg.mine .from { color: #2f8f4e; }",
    ".msg.pending { opacity: 0.5; }",
    ".note { color: #8a94a1; font-size: 13px; font-style: italic; padding: 3px 0; }",
    "#typing { height: 22px; padding: 0 12px; font-size: 13px; color: #5b6775; font-style: italic; }",
    "#send { border-top: 1px solid #e4e8ee; border-bottom: 0; }",
    "#text { flex: 1; }",
    "#people h2 { font-size: 14px; margin: 0; padding: 12px 12px 8px; color: #5b6775; font-weight: 600; }",
    "#who { list-style: none; margin: 0; padding: 0 12px 12px; overflow-y: auto; }",
    "#who li { padding: 4px 0; display: flex; align-items: center; gap: 8px; }",
    "#who li::before { content: ''; width: 9px; height: 9px; border-radius: 50%; background: #2f8f4e; flex: none; }",
    "#who li.away::before { background: #b7791f; }",
    "#who li.typing::before { background: #2f6fbd; }",
    "#who .st { margin-left: auto; font-size: 12px; color: #8a94a1; }",
    "footer { font-size: 12px; color: #8a94a1; padding: 8px 12px; margin-top: auto; border-top: 1px solid #e4e8ee; }",
    "footer a { color: #5b6775; }",
    "</style>",
    "</head>",
    "<body>",
    "<header><h1>rtws chat</h1><span id='me'></span><span id='status'>starting</span></header>",
    "<main>",
    "<section class='card'>",
    "<form class='bar' id='join'><label for='room'>room</label><input id='room' value='lobby' maxlength='64' autocomplete='off'><button>join</button><span id='chan' class='note'></span></form>",
    "<div id='log' aria-live='polite'></div>",
    "<div id='typing'></div>",
    "<form class='bar' id='send'><input id='text' placeholder='Say something' maxlength='2000' autocomplete='off'><button id='go'>send</button></form>",
    "</section>",
    "<aside class='card' id='people'><h2>online <span id='count'></span></h2><ul id='who'></ul>",
    "<footer><a href='/ws/status' target='_blank'>server status</a></footer></aside>",
    "</main>",
    "<script type='module'>",
    "/* The realtime protocol (docs/PROTOCOL.md) is rtws.js's business, served by",
    "   this server at /rtws.js: reconnects, session resume, since, unacked",
    "   publishes resent, replays de-duplicated. Typing is the presence status 'typing'. */",
    "import { RtwsClient } from '/rtws.js';",
    "const $ = (id) => document.getElementById(id);",
    "const token = new URLSearchParams(location.search).get('token') || '';",
    "const rt = new RtwsClient('/ws' + (token \? '\?token=' + encodeURIComponent(token) : ''), { backoffBaseMs: 500, backoffMaxMs: 30000 });",
    "window.chat = rt;              /* for the console (and tests/interop_browser.js) */",
    "let room = '', typing = false, typingTimer = 0;",
    "const pending = new Map();     /* publish id -> its line, until acked */",
    "",
    "function chan() { return 'room:' + room; }",
    "function status(text, cls) { $('status').textContent = text; $('status').className = cls; }",
    "function atBottom() { const l = $('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 40; }",
    "function append(el) { const stick = atBottom(); $('log').appendChild(el); if (stick) $('log').scrollTop = 1e9; }",
    "function note(text) { const d = document.createElement('div'); d.className = 'note'; d.textContent = text; append(d); }",
    "function clock(ts) { const d = new Date(ts); return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0'); }",
    "function line(from, text, ts, cls) {",
    "  const d = document.createElement('div'), t = document.createElement('span'), f = document.createElement('span'), x = document.createElement('span');",
    "  d.className = 'msg' + (cls \? ' ' + cls : '');",
    "  t.className = 'time'; t.textContent = clock(ts);",
    "  f.className = 'from'; f.textContent = from;",
    "  x.className = 'text'; x.textContent = text;",
    "  d.append(t, f, x);",
    "  append(d);",
    "  return d;",
    "}",
    "let crowd = 0;                 /* members, when too many to list */",
    "function renderPeople() {",
    "  const people = rt.presence(chan()), ul = $('who'), names = [...people.keys()].sort();",
    "  ul.textContent = '';",
    "  for (const u of names) {",
    "    const li = document.createElement('li'), n = document.createElement('span'), s = document.createElement('span');",
    "    const st = people.get(u);",
    "    li.className = st;",
    "    n.textContent = u + (u === rt.user \? ' (you)' : '');",
    "    s.className = 'st'; s.textContent = st === 'online' \? '' : st;",
    "    li.append(n, s);",
    "    ul.appendChild(li);",
    "  }",
    "  $('count').textContent = '(' + (crowd || names.length) + ')';",
    "  const t = names.filter((u) => u !== rt.user && people.get(u) === 'typing');",
    "  $('typing').textContent = t.length === 0 \? '' : t.length === 1 \? t[0] + ' is typing...' : t.join(', ') + ' are typing...';",
    "}",
    "",
    "rt.on('state', (e) => {",
    "  if (e.state === 'connecting') status(e.attempt \? 'reconnecting...' : 'connecting...', 'wait');",
    "  else if (e.state === 'reconnecting') { typing = false; status('offline (' + e.code + (e.reason \? ' ' + e.reason : '') + '), retry in ' + Math.ceil(e.delay / 1000) + ' s', 'bad'); }",
    "  else if (e.state === 'failed') status('offline (' + e.code + (e.reason \? ' ' + e.reason : '') + ')', 'bad');",
    "});",
    "rt.on('welcome', (w) => {",
    "  if (rt.stats.connects > 1 && !w.resumed) note('new session: the server forgot the old one');",
    "  $('me').textContent = w.user;",
    "  status('connected' + (w.resumed \? ' (resumed)' : ''), 'ok');",
    "  if (w.auth === 'required' && !token) note('this server wants a token: open /\?token=<JWT>');",
    "});",
    "rt.on('authenticated', (a) => { $('me').textContent = a.user; });",
    "rt.on('subscribed', (m) => {",
    "  if (m.channel !== chan()) return;",
    "  $('chan').textContent = m.channel;",
    "  crowd = m.presence \? 0 : m.members;   /* big rooms come without the list */",
    "  renderPeople();",
    "});",
    "rt.on('reset', (m) => { if (m.channel === chan() && m.seq) note('some messages were missed while offline'); });",
    "rt.on('message', (m) => {",
    "  if (m.channel !== chan() || m.event !== 'message') return;",
    "  const d = m.data;",
    "  line(m.from, d && typeof d.text === 'string' \? d.text : JSON.stringify(d), m.ts, m.from === rt.user \? 'mine' : '');",
    "});",
    "rt.on('ack', (a) => { const el = pending.get(a.id); if (el) { el.remove(); pending.delete(a.id); } });",
    "rt.on('presence', (m) => { if (m.channel === chan()) renderPeople(); });",
    "rt.on('error', (e) => {",
    "  note('server: ' + e.code + ' (' + e.message + ')');",
    "  if (e.publish && pending.has(e.publish.id)) { pending.get(e.publish.id).remove(); pending.delete(e.publish.id); }",
    "});",
    "",
    "function setTyping(on) {",
    "  clearTimeout(typingTimer);",
    "  if (on) typingTimer = setTimeout(() => setTyping(false), 3000);",
    "  if (on === typing) return;",
    "  if (rt.setPresence(chan(), on \? 'typing' : 'online')) typing = on;",
    "}",
    "",
    "function join(name) {",
    "  const clean = name.trim().replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 64) || 'lobby';",
    "  if (clean === room) return;",
    "  if (room) { setTyping(false); rt.unsubscribe(chan()); }",
    "  room = clean;",
    "  $('room').value = room;",
    "  $('log').textContent = '';",
    "  crowd = 0;",
    "  history.replaceState(null, '', '#' + room);",
    "  rt.subscribe(chan(), { since: 0 });   /* 0: whatever history the server still has */",
    "  renderPeople();",
    "}",
    "",
    "$('join').onsubmit = (e) => { e.preventDefault(); join($('room').value); };",
    "$('text').oninput = () => setTyping($('text').value.length > 0);",
    "$('send').onsubmit = (e) => {",
    "  e.preventDefault();",
    "  const text = $('text').value.trim();",
    "  if (!text) return;",
    "  const id = rt.publish(chan(), { text: text });",
    "  pending.set(id, line(rt.user || 'me', text + '  (sending)', Date.now(), 'mine pending'));",
    "  $('text').value = '';",
    "  setTyping(false);",
    "};",
    "join(location.hash.slice(1) || 'lobby');",
    "</script>",
    "</body>",
    "</html>",
};

/* clients/js/rtws.js, which the page imports from /rtws.js: the Makefile
   makes build/rtws_js.h out of it (build with -Ibuild, or `make`) */
static const char *const rtws_js_lines[] = {
#include "rtws_js.h"
};

typedef struct app {
    rtws_router *router;
    char *page, *js;
    size_t page_len, js_len;
} app;

static char *join_lines(const char *const *lines, size_t k, size_t *len) {
    size_t i, n = 0;
    char *p;
    for (i = 0; i < k; i++) n += strlen(lines[i]) + 1;
    p = (char *)malloc(n + 1);
    if (!p) return NULL;
    for (i = 0, n = 0; i < k; i++) {
        size_t l = strlen(lines[i]);
        memcpy(p + n, lines[i], l);
        n += l;
        p[n++] = '\n';
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static int str_is(rtws_str s, const char *z) { return s.len == strlen(z) && !memcmp(s.p, z, s.len); }

/* Plain HTTP (the router answered /ws/status already): the page at "/",
   its client at "/rtws.js", 426 for a plain GET of /ws (the upgrade checks
   say so), 404 otherwise. */
static int on_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *reply, void *user) {
    app *a = (app *)user;
    (void)c;
    if (str_is(req->path, "/ws")) return 0;
    if (!str_is(req->method, "GET") && !str_is(req->method, "HEAD")) {
        reply->status = 405;
        reply->body = "method not allowed\n";
        reply->body_len = 19;
        reply->headers = "Allow: GET, HEAD\r\n";
        return 1;
    }
    if (str_is(req->path, "/") || str_is(req->path, "/index.html")) {
        reply->status = 200;
        reply->content_type = "text/html; charset=utf-8";
        reply->body = a->page;
        reply->body_len = a->page_len;
        reply->headers = "X-Content-Type-Options: nosniff\r\n"
                         "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "
                         "style-src 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src data:\r\n";
        return 1;
    }
    if (str_is(req->path, "/rtws.js")) {
        reply->status = 200;
        reply->content_type = "text/javascript; charset=utf-8";
        reply->body = a->js;
        reply->body_len = a->js_len;
        reply->headers = "X-Content-Type-Options: nosniff\r\n";
        return 1;
    }
    reply->status = 404;
    reply->body = "not found\n";
    reply->body_len = 10;
    return 1;
}

/* The browser pages that may open the WebSocket: the --allow-origin values,
   else the page itself at http://127.0.0.1:P and http://localhost:P (and
   http://H:P for a named --host H), P being the port listened on. Never
   derived from the request's Host header: with DNS rebinding a hostile page
   at http://evil.example:P gets Host: evil.example:P too. */
#define MAX_ORIGINS 16
static const char *origins[MAX_ORIGINS + 1];
static char default_origins[3][300];

static void set_default_origins(const char *host, int port) {
    int n = 0;
    snprintf(default_origins[n++], sizeof default_origins[0], "http://127.0.0.1:%d", port);
    snprintf(default_origins[n++], sizeof default_origins[0], "http://localhost:%d", port);
    if (*host && strcmp(host, "0.0.0.0") && strcmp(host, "::") && strcmp(host, "127.0.0.1") &&
        strcmp(host, "localhost"))
        snprintf(default_origins[n++], sizeof default_origins[0],
                 strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host, port);
    while (n--) origins[n] = default_origins[n];
}

/* A browser sends Origin with every upgrade; it must be one of origins
   (compared case-insensitively, as scheme and host are). Clients that send
   no Origin are not browsers and are let through. Then the router decides
   (path, token, session). */
static int on_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    rtws_router *r = (rtws_router *)user;
    const rtws_str *origin = rtws_http_get_header(req, "Origin");
    (void)proto;
    if (origin) {
        const char *const *o;
        for (o = origins; *o; o++) {
            size_t i, n = strlen(*o);
            if (n != origin->len) continue;
            for (i = 0; i < n && tolower((unsigned char)origin->p[i]) == tolower((unsigned char)(*o)[i]); i++) {
            }
            if (i == n) break;
        }
        if (!*o) return 403;
    }
    return rtws_router_handle_accept(r, c, req, rtws_time_now_ms());
}

/* v as a whole number in [min, max]; else -1, having said why (then exit 2) */
static long num(const char *name, const char *v, long min, long max) {
    long n;
    if (rtws_opt_number(v, min, max, &n)) return n;
    fprintf(stderr, "chat_server: %s takes a whole number from %ld to %ld, not \"%s\"\n",
            name, min, max, v);
    return -1;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *secret = NULL, *shown, *redis = NULL, *redis_prefix = NULL;
    int port = 8080, bound = 0, i, norigins = 0;
    long budget_mib = 256, max_channels = 10000, ttl_s = 300;
    long hs_timeout_ms = 10000, msg_timeout_ms = 30000;
    app a;
    rtws_router_config rc;
    rtws_ctx_config cfg;
    rtws_err e;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            if ((port = (int)num("--port", argv[++i], 0, 65535)) < 0) return 2;
        }
        else if (!strcmp(argv[i], "--jwt-secret") && i + 1 < argc) secret = argv[++i];
        else if (!strcmp(argv[i], "--allow-origin") && i + 1 < argc && norigins < MAX_ORIGINS)
            origins[norigins++] = argv[++i];
        else if (!strcmp(argv[i], "--memory-budget") && i + 1 < argc) {
            if ((budget_mib = num("--memory-budget", argv[++i], 0, 1048576)) < 0) return 2;
        }
        else if (!strcmp(argv[i], "--max-channels") && i + 1 < argc) {
            if ((max_channels = num("--max-channels", argv[++i], 1, 100000000L)) < 0) return 2;
        }
        else if (!strcmp(argv[i], "--channel-ttl") && i + 1 < argc) {
            if ((ttl_s = num("--channel-ttl", argv[++i], 1, 86400)) < 0) return 2;
        }
        else if (!strcmp(argv[i], "--handshake-timeout") && i + 1 < argc) {
            hs_timeout_ms = num("--handshake-timeout", argv[++i], 1, 86400000L);
            if (hs_timeout_ms < 0) return 2;
        }
        else if (!strcmp(argv[i], "--message-timeout-ms") && i + 1 < argc) {
            msg_timeout_ms = num("--message-timeout-ms", argv[++i], 0, 86400000L);
            if (msg_timeout_ms < 0) return 2;
        }
        else if (!strcmp(argv[i], "--redis") && i + 1 < argc) redis = argv[++i];
        else if (!strcmp(argv[i], "--redis-prefix") && i + 1 < argc) redis_prefix = argv[++i];
        else {
            fprintf(stderr, "chat_server: unknown or incomplete option %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    memset(&a, 0, sizeof a);
    a.page = join_lines(page_lines, sizeof page_lines / sizeof page_lines[0], &a.page_len);
    a.js = join_lines(rtws_js_lines, sizeof rtws_js_lines / sizeof rtws_js_lines[0], &a.js_len);
    if (!a.page || !a.js) return 1;

    memset(&rc, 0, sizeof rc);
    rc.path = "/ws";
    rc.status_path = "/ws/status";
    if (secret) {
        rc.jwt_secret = secret;
        rc.jwt_secret_len = strlen(secret);
        rc.auth_required = 1;
    }
    rc.max_conns_per_user = 5;
    rc.rate_per_s = 20;
    rc.rate_burst = 40;
    rc.max_channels_total = (size_t)max_channels;
    rc.max_user_channels = 100;
    rc.channel_ttl_ms = (uint32_t)ttl_s * 1000u;
    rc.on_http = on_http;
    rc.user = &a;
    rc.redis_url = redis;
    rc.redis_prefix = redis_prefix;
    a.router = rtws_router_new(&rc);
    if (!a.router) {
        if (redis) fprintf(stderr, "chat_server: bad --redis URL or --redis-prefix\n");
        return 1;
    }

    memset(&cfg, 0, sizeof cfg);
    cfg.max_connections = 1000;
    cfg.memory_budget = (size_t)budget_mib << 20; /* one cap over queues, history, sessions */
    cfg.conn.idle_timeout_ms = 3600000; /* 1 h without a message from the client */
    cfg.conn.ping_interval_ms = 30000;  /* also advertised as "heartbeat" in welcome */
    cfg.conn.max_message = 256 * 1024;  /* a publish's data is capped at 64 KiB anyway */
    cfg.conn.message_timeout_ms = (uint32_t)msg_timeout_ms; /* slow senders: 256 KiB in 30 s */
    cfg.conn.handshake_timeout_ms = (uint32_t)hs_timeout_ms; /* slowloris */
    rtws_router_install(a.router, &cfg);
    cfg.conn.on_accept = on_accept;     /* the origin check, then the router's */
    ctx = rtws_ctx_new(&cfg);
    if (!ctx) return 1;
    e = rtws_ctx_listen(ctx, host, port, &bound);
    if (e != RTWS_OK) {
        fprintf(stderr, "chat_server: cannot listen on %s:%d: %s\n", host, port, rtws_err_str(e));
        return 1;
    }
    if (!norigins) set_default_origins(host, bound);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    shown = !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ? "127.0.0.1" : host;
    printf("listening on %s:%d\n", host, bound);
    printf(strchr(shown, ':') ? "open http://[%s]:%d/%s in a browser\n"
                              : "open http://%s:%d/%s in a browser\n",
           shown, bound, secret ? "?token=<JWT signed with the secret>" : "");
    fflush(stdout);
    rtws_ctx_run(ctx, 2000); /* until a signal; then close 1001, waiting up to 2 s */
    /* the router first: it lets go of connections the context still holds */
    rtws_router_free(a.router);
    rtws_ctx_free(ctx);
    free(a.page);
    free(a.js);
    return 0;
}
