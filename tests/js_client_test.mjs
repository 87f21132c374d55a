// clients/js/rtws.js in Node against build/chat_server (port 0) and against
// scripted servers, with the ws package as the WebSocket constructor (Node 20
// has no global one). A fault proxy in Node sits between some clients and the
// server: it cuts every link, refuses new ones, or stops forwarding without
// closing (a half-open link). Prints "ok: ..."/"FAILED: ..." lines and ends
// with "N passed, M failed".
//   RTWS_WS_MODULE=/path/to/node_modules/ws node tests/js_client_test.mjs [build/chat_server]
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createRequire } from 'node:module';
import { createHmac } from 'node:crypto';
import { RtwsClient, backoffBound, validChannel, STATES } from '../clients/js/rtws.js';

const require = createRequire(import.meta.url);
const WS = require(process.env.RTWS_WS_MODULE || 'ws');
const BIN = process.argv[2] || 'build/chat_server';

let pass = 0, fail = 0;
const check = (cond, what, why) => {
  if (cond) { pass++; console.log('ok: ' + what); } else { fail++; console.log('FAILED: ' + what + (why !== undefined ? ' (' + why + ')' : '')); }
  return !!cond;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    let v;
    try { v = fn(); } catch (e) { v = false; }
    if (v || Date.now() > end) return v;
    await sleep(10);
  }
}

// ---- chat_server, on a port the OS picks; stopped by its PID ----
const procs = new Set();
function startServer(extra) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, ['--host', '127.0.0.1', '--port', '0'].concat(extra || []), { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(p);
    let out = '';
    const t = setTimeout(() => reject(new Error('chat_server did not start: ' + out)), 5000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve({ proc: p, port: Number(m[1]) }); }
    });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', () => { procs.delete(p); clearTimeout(t); reject(new Error('chat_server exited: ' + out)); });
  });
}
function stopServer(s, sig) {
  return new Promise((resolve) => {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) { resolve(); return; }
    s.proc.once('exit', () => resolve());
    s.proc.kill(sig || 'SIGTERM');
  });
}

// ---- the fault proxy ----
class Proxy {
  constructor(target) {
    this.target = target;
    this.pairs = new Set();
    this.requests = []; // first line of each upgrade request
    this.refuse = false; // new connections are closed at once
  }
  start() {
    this.server = net.createServer((c) => this._conn(c));
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => { this.port = this.server.address().port; r(); }));
  }
  _conn(c) {
    if (this.refuse) { c.destroy(); return; }
    const u = net.connect(this.target, '127.0.0.1');
    const pair = { c, u, hole: false };
    this.pairs.add(pair);
    let first = true;
    c.on('data', (d) => {
      if (first) { first = false; this.requests.push(d.toString('latin1').split('\r\n')[0]); }
      if (!pair.hole) u.write(d);
    });
    u.on('data', (d) => { if (!pair.hole) c.write(d); });
    const end = () => { c.destroy(); u.destroy(); this.pairs.delete(pair); };
    for (const s of [c, u]) { s.on('error', end); s.on('close', end); }
  }
  cut() { for (const p of [...this.pairs]) { p.c.destroy(); p.u.destroy(); } this.pairs.clear(); }
  blackhole() { for (const p of this.pairs) p.hole = true; } // open, silent, both ways
  close() { this.cut(); this.server.close(); }
}

// ---- clients: every event recorded ----
const clients = [];
function client(port, opts) {
  const c = new RtwsClient('ws://127.0.0.1:' + port + '/ws', Object.assign({
    WebSocket: WS, backoffBaseMs: 50, backoffMaxMs: 400, stableMs: 300, pingIntervalMs: 1000, pongTimeoutMs: 1500,
  }, opts || {}));
  c.log = { states: [], messages: [], acks: [], presence: [], errors: [], welcomes: [], resets: [], subscribed: [], latency: [] };
  c.on('state', (e) => c.log.states.push(e));
  c.on('message', (m) => c.log.messages.push(m));
  c.on('ack', (a) => c.log.acks.push(a));
  c.on('presence', (p) => c.log.presence.push(p));
  c.on('error', (e) => c.log.errors.push(e));
  c.on('welcome', (w) => c.log.welcomes.push(w));
  c.on('reset', (r) => c.log.resets.push(r));
  c.on('subscribed', (s) => c.log.subscribed.push(s));
  c.on('latency', (l) => c.log.latency.push(l));
  clients.push(c);
  return c;
}
const texts = (c, ch) => c.log.messages.filter((m) => m.channel === ch).map((m) => m.data && m.data.text);
const seqs = (c, ch) => c.log.messages.filter((m) => m.channel === ch).map((m) => m.seq);
const subscribed = (c, ch) => until(() => c.log.subscribed.some((s) => s.channel === ch) && c.state === 'open', 5000);

function freePort() {
  return new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
}

// ---- no server: backoff, names ----
async function testPure() {
  check([1, 2, 3, 4, 7, 8].map((n) => backoffBound(n)).join() === '1000,2000,4000,8000,60000,60000',
    'backoffBound: 1000 * 2^(n-1), capped at 60000', [1, 2, 3, 4, 7, 8].map((n) => backoffBound(n)).join());
  check(validChannel('room:lobby') && !validChannel('') && !validChannel('a b') && !validChannel('x'.repeat(129)) && !validChannel('a"b') && validChannel('é'.repeat(64)) && !validChannel('é'.repeat(65)),
    'channel names: 1-128 bytes, no space, quote or control');
  check(STATES.join() === 'connecting,open,closing,closed,reconnecting,failed', 'states named as rtws_client\'s');
  let threw = false;
  const saved = globalThis.WebSocket;
  try { delete globalThis.WebSocket; new RtwsClient('ws://127.0.0.1:1/ws', { autoConnect: false }); } catch (e) { threw = e instanceof TypeError; }
  if (saved) globalThis.WebSocket = saved;
  check(threw, 'no WebSocket and none passed in: TypeError');
}

// nothing listens: attempts 1..4 with delays floor(r * (bound + 1)), then failed
async function testBackoff() {
  const port = await freePort();
  const rs = [0.999, 0.5, 0.25, 0];
  let i = 0;
  const c = client(port, { backoffBaseMs: 40, backoffMaxMs: 200, maxAttempts: 4, random: () => rs[i++ % rs.length] });
  await until(() => c.state === 'failed', 5000);
  const rec = c.log.states.filter((e) => e.state === 'reconnecting');
  const want = [1, 2, 3, 4].map((n, k) => Math.floor(rs[k] * (backoffBound(n, 40, 2, 200) + 1)));
  check(c.state === 'failed' && rec.map((e) => e.attempt).join() === '1,2,3,4' && rec.map((e) => e.delay).join() === want.join(),
    'full-jitter backoff: attempts 1-4, delay = floor(random * (bound + 1)), then failed', rec.map((e) => e.attempt + ':' + e.delay).join(' ') + ' want ' + want.join());
  // and with the real random: every delay in [0, bound]
  const c2 = client(port, { backoffBaseMs: 30, backoffMaxMs: 100, maxAttempts: 6 });
  await until(() => c2.state === 'failed', 5000);
  const r2 = c2.log.states.filter((e) => e.state === 'reconnecting');
  check(r2.length === 6 && r2.every((e) => e.delay >= 0 && e.delay <= backoffBound(e.attempt, 30, 2, 100)),
    'random jitter stays within [0, bound]', r2.map((e) => e.attempt + ':' + e.delay).join(' '));
}

async function testPubSub(port) {
  const A = client(port), B = client(port);
  const ch = 'room:basic';
  A.subscribe(ch);
  await subscribed(A, ch);
  B.subscribe(ch);
  await subscribed(B, ch);
  const id = A.publish(ch, { text: 'hello' });
  await until(() => texts(B, ch).length === 1 && A.log.acks.length === 1, 3000);
  const m = B.log.messages[0], ack = A.log.acks[0];
  check(m && m.data.text === 'hello' && m.from === A.user && m.event === 'message' && m.seq === 1 && typeof m.ts === 'number',
    'publish -> the other subscriber gets it: from, event, seq 1, ts', JSON.stringify(m));
  check(ack && ack.id === id && ack.seq === 1 && !ack.duplicate && A.unacked === 0, 'publisher: ack with the id and seq 1, nothing unacked', JSON.stringify(ack));
  check(texts(A, ch).join() === 'hello', 'publisher subscribed: its own message too');
  check(A.lastSeq(ch) === 1 && B.lastSeq(ch) === 1, 'lastSeq per channel');

  // presence: A was there first, so it sees B join; B got the list in subscribed
  check(A.log.presence.some((p) => p.channel === ch && p.user === B.user && p.status === 'joined') && A.presence(ch).get(B.user) === 'online',
    'presence: A sees B join', JSON.stringify(A.log.presence));
  check(B.presence(ch).get(A.user) === 'online' && B.presence(ch).get(B.user) === 'online' && B.presence(ch).size === 2,
    'presence: B gets the list (both users)', JSON.stringify([...B.presence(ch)]));
  B.setPresence(ch, 'away');
  check(await until(() => A.presence(ch).get(B.user) === 'away', 3000), 'presence status set by B reaches A');
  const rtt = await A.ping();
  check(Number.isFinite(rtt) && rtt >= 0 && rtt < 1000 && A.rtt === rtt && A.log.latency.length >= 1, 'latency: ping() resolves with the round trip, latency event', rtt);
  B.close();
  check(await until(() => A.log.presence.some((p) => p.user === B.user && p.status === 'left'), 3000) && !A.presence(ch).has(B.user),
    'presence: A sees B leave when B closes');
  await sleep(200);
  check(B.state === 'closed' && B.log.states.filter((e) => e.state === 'connecting').length === 1, 'close(): closed, no reconnect', B.state);
  A.close();
}

// S behind the proxy; the link is cut and refused while P publishes; S comes
// back with ?session= and since, gets what it missed, once, in order
async function testResume(port) {
  const proxy = new Proxy(port);
  await proxy.start();
  const S = client(proxy.port), P = client(port);
  const ch = 'room:resume';
  S.subscribe(ch);
  await subscribed(S, ch);
  P.publish(ch, { text: 'm1' });
  await until(() => texts(S, ch).length === 1, 3000);
  const user = S.user, session = S.session;
  proxy.refuse = true;
  proxy.cut();
  await until(() => S.state === 'reconnecting', 3000);
  for (const t of ['m2', 'm3', 'm4']) P.publish(ch, { text: t });
  await until(() => P.unacked === 0, 3000);
  proxy.refuse = false;
  await until(() => texts(S, ch).length === 4, 5000);
  const w = S.log.welcomes[S.log.welcomes.length - 1];
  check(S.log.welcomes.length >= 2 && w.resumed && S.user === user, 'cut: reconnected, session resumed, same user', JSON.stringify(w));
  check(proxy.requests[proxy.requests.length - 1].includes('?session=' + session), 'reconnect asks for ?session=', proxy.requests[proxy.requests.length - 1]);
  check(texts(S, ch).join() === 'm1,m2,m3,m4' && seqs(S, ch).join() === '1,2,3,4', 'missed messages replayed with since: once, in order', texts(S, ch).join());
  S.close(); P.close();
  proxy.close();
}

// P offline publishes 5; delivered once each, in order, after the reconnect
async function testOfflineQueue(port) {
  const proxy = new Proxy(port);
  await proxy.start();
  const P = client(proxy.port), S = client(port);
  const ch = 'room:queue';
  S.subscribe(ch);
  await subscribed(S, ch);
  await until(() => P.state === 'open' && P.user, 3000);
  proxy.refuse = true;
  proxy.cut();
  await until(() => P.state === 'reconnecting', 3000);
  const ids = [];
  for (let i = 1; i <= 5; i++) ids.push(P.publish(ch, { text: 'q' + i }));
  check(P.unacked === 5, 'offline: publishes kept (unacked 5)', P.unacked);
  await sleep(150);
  proxy.refuse = false;
  await until(() => P.unacked === 0 && texts(S, ch).length >= 5, 5000);
  await sleep(300);
  check(texts(S, ch).join() === 'q1,q2,q3,q4,q5', 'offline queue: delivered after the reconnect, once each, in order', texts(S, ch).join());
  check(P.log.acks.map((a) => a.id).join() === ids.join() && P.unacked === 0, 'every offline publish acked, in id order');
  P.close(); S.close();
  proxy.close();
}

// the proxy stops forwarding without closing: only the heartbeat can tell
async function testHalfOpen(port) {
  const proxy = new Proxy(port);
  await proxy.start();
  const S = client(proxy.port, { pingIntervalMs: 200, pongTimeoutMs: 500 }), P = client(port);
  const ch = 'room:halfopen';
  S.subscribe(ch);
  await subscribed(S, ch);
  const t0 = Date.now();
  proxy.blackhole();
  P.publish(ch, { text: 'while silent' });
  const down = await until(() => S.log.states.some((e) => e.state === 'reconnecting' && e.reason === 'heartbeat timeout'), 3000);
  const took = Date.now() - t0;
  check(down && took < 1500, 'half-open link noticed by the heartbeat (no pong within pongTimeoutMs)', took + ' ms');
  await until(() => texts(S, ch).length === 1 && S.state === 'open', 5000);
  check(S.log.welcomes.length === 2 && S.log.welcomes[1].resumed && texts(S, ch).join() === 'while silent',
    'half-open: reconnected, resumed, the message sent meanwhile delivered', texts(S, ch).join());
  S.close(); P.close();
  proxy.close();
}

// the server dies mid-stream (SIGKILL) and another one takes its place
async function testRestart(srv) {
  const proxy = new Proxy(srv.port);
  await proxy.start();
  const S = client(proxy.port), P = client(proxy.port);
  const ch = 'room:restart';
  let atReset = -1;
  S.on('reset', () => { atReset = S.log.messages.length; });
  S.subscribe(ch);
  await subscribed(S, ch);
  await until(() => P.state === 'open' && P.user, 3000);
  const want = [], acks = new Map(); // id -> { seq, server: 1 old, 2 new }
  const ids = new Map(); // text -> id
  P.on('ack', (a) => acks.set(a.id, { seq: a.seq, server: P.log.welcomes.length }));
  for (let i = 1; i <= 20; i++) {
    want.push('r' + i);
    ids.set('r' + i, P.publish(ch, { text: 'r' + i }));
    if (i === 10) {
      await until(() => texts(S, ch).length >= 5, 3000);
      await stopServer(srv, 'SIGKILL');
      proxy.cut();
      const fresh = await startServer();
      proxy.target = fresh.port;
      srv.proc = fresh.proc;
      srv.port = fresh.port;
    }
    await sleep(10);
  }
  await until(() => P.unacked === 0 && S.state === 'open' && S.log.resets.length >= 1, 8000);
  check(S.log.welcomes.length >= 2 && !S.log.welcomes[S.log.welcomes.length - 1].resumed && S.log.resets.length >= 1,
    'server restart: reconnected to the new server (session not resumed), reset for the old since', JSON.stringify(S.log.resets));
  // the publisher: every publish acked, by one server or the other (unacked ones resent)
  check(P.unacked === 0 && want.every((t) => acks.has(ids.get(t))), 'server restart mid-stream: every publish acked (unacked resent to the new server)', P.unacked);
  // the subscriber: each message at most once; one it never got was published
  // on the new server before its resubscribe, which the reset says
  const got = texts(S, ch), reset = S.log.resets[S.log.resets.length - 1].seq;
  const missing = want.filter((t) => !got.includes(t));
  check(new Set(got).size === got.length && missing.every((t) => acks.get(ids.get(t)).server >= 2 && acks.get(ids.get(t)).seq <= reset),
    'server restart: nothing twice; what was missed is covered by the reset (seq ' + reset + ')', 'missing ' + missing.join() + ' got ' + got.join());
  for (let i = 21; i <= 25; i++) P.publish(ch, { text: 'r' + i });
  await until(() => texts(S, ch).includes('r25'), 3000);
  const tail = texts(S, ch).filter((t) => Number(t.slice(1)) > 20);
  const since = S.log.messages.slice(atReset).map((m) => m.seq);
  check(tail.join() === 'r21,r22,r23,r24,r25' && since.length >= 5 && since.every((q, k) => q === reset + 1 + k),
    'after the reset: the new server\'s messages delivered, seq ' + (reset + 1) + ' on without a gap', tail.join() + ' seqs ' + since.join());
  S.close(); P.close();
  proxy.close();
}

// 200 numbered messages, the publisher and the subscriber both cut in the middle
async function testExactlyOnce(port) {
  const proxy = new Proxy(port);
  await proxy.start();
  const S = client(proxy.port), P = client(proxy.port, { ratePerSec: 19, rateBurst: 30 });
  const ch = 'room:200';
  S.subscribe(ch);
  await subscribed(S, ch);
  await until(() => P.state === 'open' && P.user, 3000);
  const t0 = Date.now();
  for (let i = 1; i <= 200; i++) P.publish(ch, { text: String(i) });
  await until(() => texts(S, ch).length >= 80, 10000);
  proxy.cut();
  await until(() => texts(S, ch).length >= 200 && P.unacked === 0, 20000);
  await sleep(300);
  const got = texts(S, ch).map(Number);
  let inOrder = got.length === 200;
  for (let i = 0; i < got.length && inOrder; i++) inOrder = got[i] === i + 1;
  check(inOrder, '200 messages across a cut: each exactly once, in order (' + ((Date.now() - t0) / 1000).toFixed(1) + ' s)', got.length + ' got, first wrong at ' + got.findIndex((v, i) => v !== i + 1));
  check(P.unacked === 0 && P.log.welcomes.length >= 2 && P.log.welcomes[P.log.welcomes.length - 1].resumed && S.log.welcomes.length >= 2,
    'both sides were cut and resumed; everything acked', 'P unacked ' + P.unacked + ', P resent ' + P.stats.resent + ', S duplicates dropped ' + S.stats.duplicates);
  check(!P.log.errors.some((e) => e.code === 'rate_limited'), 'ratePerSec pacing: no rate_limited from chat_server (20/s, burst 40)', JSON.stringify(P.log.errors.slice(0, 3)));
  S.close(); P.close();
  proxy.close();
}

// chat_server --jwt-secret: the token goes in an auth message after welcome
async function testAuth() {
  const secret = 'js-test-secret';
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 });
  const token = body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
  const srv = await startServer(['--jwt-secret', secret]);
  const A = client(srv.port, { token }), N = client(srv.port);
  let auths = 0;
  A.on('authenticated', () => auths++);
  A.once('welcome', () => A.subscribe('room:auth2')); // from a listener: sent once
  A.subscribe('room:auth');
  N.subscribe('room:auth');
  await subscribed(A, 'room:auth');
  await until(() => A.log.subscribed.length >= 2, 2000);
  const id = A.publish('room:auth', { text: 'signed' });
  await until(() => A.unacked === 0 && N.log.errors.length >= 1, 3000);
  check(A.user === 'alice' && auths === 1 && A.log.acks.some((a) => a.id === id) && texts(A, 'room:auth').join() === 'signed',
    'token option: auth after welcome, authenticated as alice, subscribe and publish work', A.user + ' ' + auths);
  check(A.log.subscribed.filter((x) => x.channel === 'room:auth2').length === 1, 'subscribe from a welcome listener: sent once',
    A.log.subscribed.map((x) => x.channel).join());
  check(N.log.errors[0] && N.log.errors[0].code === 'unauthorized' && N.log.welcomes[0].auth === 'required',
    'without a token on a server that requires one: unauthorized', JSON.stringify(N.log.errors[0]));
  let threw = 0;
  for (const bad of ['', 'x'.repeat(65), 'a\nb', 7]) { try { A.publish('room:auth', 1, { id: bad }); } catch (e) { threw += e instanceof TypeError ? 1 : 0; } }
  check(threw === 4 && A.unacked === 0, 'publish ids the server would refuse without echoing them: TypeError');
  A.close(); N.close();
  await stopServer(srv);
}

// ---- scripted servers (the ws package's): what chat_server cannot be made to do ----
function scripted(onConn) {
  return new Promise((resolve) => {
    const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: 0 }, () => resolve(wss));
    wss.on('connection', onConn);
  });
}
const J = (ws, o) => ws.send(JSON.stringify(o));

// a replay that overlaps what was delivered; then a drop: the reconnect
// carries the session and since
async function testDedupe() {
  const seen = [];
  let n = 0;
  const wss = await scripted((ws, req) => {
    const k = ++n;
    seen.push({ url: req.url, msgs: [] });
    J(ws, { type: 'welcome', user: 'u1', session: 'SESS1', time: Date.now(), heartbeat: 30000, auth: 'optional', resumed: k > 1 });
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      seen[k - 1].msgs.push(m);
      if (m.type !== 'subscribe') return;
      J(ws, { type: 'subscribed', channel: m.channel, seq: 0, members: 1 });
      if (k === 1) {
        for (const s of [1, 2, 3, 2, 3, 4]) J(ws, { type: 'message', channel: m.channel, event: 'message', data: { s }, seq: s, from: 'x', ts: 1 });
        setTimeout(() => ws.terminate(), 50);
      } else {
        for (const s of [3, 4, 5]) J(ws, { type: 'message', channel: m.channel, event: 'message', data: { s }, seq: s, from: 'x', ts: 1 });
      }
    });
  });
  const c = client(wss.address().port, { pingIntervalMs: 60000 });
  c.subscribe('c1');
  await until(() => c.log.messages.length >= 5, 4000);
  await sleep(100);
  check(c.log.messages.map((m) => m.seq).join() === '1,2,3,4,5' && c.stats.duplicates === 4,
    'dedupe: replayed seqs (2, 3, then 3, 4 after the reconnect) not delivered twice', c.log.messages.map((m) => m.seq).join() + ' dropped ' + c.stats.duplicates);
  const sub2 = seen[1] && seen[1].msgs.find((m) => m.type === 'subscribe');
  check(seen.length === 2 && seen[1].url === '/ws?session=SESS1' && sub2 && sub2.since === 4,
    'reconnect: ?session= from welcome, subscribe with since = last seq', seen[1] && seen[1].url + ' ' + JSON.stringify(sub2));
  c.close();
  wss.close();
}

// rate_limited with the publish id and retry_after_ms: pause, then that
// publish and the ones after it again, in order; without id and field: the
// default pause, then every unacked publish
async function testRateLimited() {
  const got = []; // { id, at }
  let refused = 0, errAt = 0, mode = 'id';
  const wss = await scripted((ws) => {
    J(ws, { type: 'welcome', user: 'u2', session: 'SESS2', time: Date.now(), heartbeat: 30000, auth: 'optional', resumed: false });
    let seq = 0;
    const done = new Map();
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      if (m.type !== 'publish') return;
      got.push({ id: m.id, text: m.data.text, at: Date.now() });
      if (refused < 2 && (m.data.text === 'p2' || m.data.text === 'p3')) {
        refused++;
        if (!errAt) errAt = Date.now();
        J(ws, mode === 'id' ? { type: 'error', code: 'rate_limited', message: 'slow down', id: m.id, retry_after_ms: 300 } : { type: 'error', code: 'rate_limited', message: 'slow down' });
        return;
      }
      if (done.has(m.id)) { J(ws, { type: 'ack', id: m.id, seq: done.get(m.id), duplicate: true }); return; }
      done.set(m.id, ++seq);
      J(ws, { type: 'ack', id: m.id, seq });
    });
  });
  const c = client(wss.address().port, { pingIntervalMs: 60000, retryAfterMs: 200 });
  await until(() => c.state === 'open' && c.user, 3000);
  for (const t of ['p1', 'p2', 'p3']) c.publish('c', { text: t });
  await until(() => c.unacked === 0, 3000);
  const seqText = got.map((g) => g.text).join();
  const resent = got.filter((g) => g.at > errAt && (g.text === 'p2' || g.text === 'p3') && got.indexOf(g) >= 3);
  check(seqText === 'p1,p2,p3,p2,p3' && resent.length === 2 && resent[0].at - errAt >= 280 && c.unacked === 0,
    'rate_limited + retry_after_ms: paused, then p2, p3 resent in order', seqText + ', waited ' + (resent[0] ? resent[0].at - errAt : '-') + ' ms');
  // the current server: no id, no retry_after_ms
  got.length = 0; refused = 1; errAt = 0; mode = 'plain';
  for (const t of ['p4', 'p2']) c.publish('c', { text: t });
  await until(() => c.unacked === 0, 3000);
  const later = got.filter((g) => g.at - errAt >= 180);
  check(got.map((g) => g.text).join() === 'p4,p2,p2' && later.length === 1 && c.unacked === 0,
    'rate_limited without id or retry_after_ms: retryAfterMs pause, unacked resent in order', got.map((g) => g.text + '@' + (g.at - errAt)).join(' '));
  c.close();
  wss.close();
}

// close 1008 (policy) is final, as in rtws_client
async function testPolicyClose() {
  let n = 0;
  const wss = await scripted((ws) => { n++; ws.close(1008, 'rate limit'); });
  const c = client(wss.address().port);
  await until(() => c.state === 'failed', 3000);
  await sleep(200);
  const last = c.log.states[c.log.states.length - 1];
  check(c.state === 'failed' && n === 1 && last.code === 1008, 'close 1008: failed, no reconnect', JSON.stringify(last));
  wss.close();
}

async function main() {
  const t0 = Date.now();
  await testPure();
  await testBackoff();
  await testDedupe();
  await testRateLimited();
  await testPolicyClose();
  const srv = await startServer();
  await testPubSub(srv.port);
  await testResume(srv.port);
  await testOfflineQueue(srv.port);
  await testHalfOpen(srv.port);
  await testExactlyOnce(srv.port);
  await testRestart(srv);
  await stopServer(srv);
  await testAuth();
  console.log('js client tests took ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
}

process.on('SIGTERM', () => { for (const p of procs) p.kill('SIGKILL'); console.log('FAILED: stopped by SIGTERM'); process.exit(1); });
main().catch((e) => check(false, 'test driver', e.stack)).finally(() => {
  for (const c of clients) c.close();
  for (const p of procs) p.kill('SIGKILL');
  console.log(pass + ' passed, ' + fail + ' failed');
  setTimeout(() => process.exit(fail ? 1 : 0), 100);
});
