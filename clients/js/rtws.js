// rtws.js - a client for the rtws realtime protocol (docs/PROTOCOL.md), for
// browsers and Node. One file, no dependencies, an ES module. It behaves like
// rtws_rt in rtws.h: it reconnects with exponential backoff and full jitter,
// resumes its session (?session=), resubscribes with `since` per channel,
// keeps publishes until they are acked and resends them in order after a
// reconnect (same ids: the server de-duplicates), drops replayed messages it
// has already delivered, tracks presence, measures the round trip with the
// protocol's ping, and notices a silent server (half-open link) by its own
// heartbeat. MIT, like rtws.h.
//
//   import { RtwsClient } from './rtws.js';
//   const rt = new RtwsClient('ws://127.0.0.1:8080/ws');   // Node 20: { WebSocket: require('ws') }
//   rt.subscribe('room:lobby');
//   rt.on('message', (m) => console.log(m.seq, m.from, m.data));
//   rt.publish('room:lobby', { text: 'hi' });

export const VERSION = '1.0.0';

// the states of rtws_client / rtws_rt, by the same names
export const STATES = Object.freeze(['connecting', 'open', 'closing', 'closed', 'reconnecting', 'failed']);

const WS_OPEN = 1; // WebSocket.OPEN, whatever constructor is in use

const DEFAULTS = {
  WebSocket: null, // a WebSocket constructor; default: globalThis.WebSocket
  token: null, // string or () => string: sent in an `auth` message after every welcome
  session: '', // a session to resume on the first connection
  autoConnect: true, // connect right away (in a microtask, so listeners added now see it all)
  backoffBaseMs: 1000, // the first delay is random in [0, base]
  backoffFactor: 2, // the bound grows by this per failed attempt
  backoffMaxMs: 60000, // bound cap
  maxAttempts: 0, // failed attempts in a row before 'failed' (0: unlimited)
  stableMs: 10000, // a connection open this long resets the backoff
  reconnectOnPolicy: false, // reconnect after close 1008 or 4000-4999 too
  connectTimeoutMs: 10000, // no welcome this long after the attempt started: retry
  pingIntervalMs: 20000, // protocol ping this often (latency and heartbeat)
  pongTimeoutMs: 10000, // nothing received this long after a ping: the link is dead
  maxUnacked: 1000, // publishes waiting for their ack
  ratePerSec: 0, // pace outgoing messages to this rate (0: no pacing)
  rateBurst: 20, // ... with this burst
  retryAfterMs: 1000, // pause after `rate_limited` when the error names no retry_after_ms
  random: Math.random, // [0, 1): the jitter (tests pass their own)
};

const now = () => (globalThis.performance && performance.now ? performance.now() : Date.now());
const noop = () => {};

// The bound of the delay before reconnect attempt n (1, 2, ...):
// min(max, base * factor^(n-1)), as rtws_client_backoff_bound.
export function backoffBound(attempt, base = 1000, factor = 2, max = 60000) {
  let b = base;
  for (let i = 1; i < attempt && b < max; i++) b *= factor;
  return Math.min(b, max);
}

// Channel names: 1-128 bytes, no space, control character, DEL, '"' or '\'.
export function validChannel(name) {
  if (typeof name !== 'string' || name.length === 0) return false;
  if (/[\x00-\x20\x7f"\\]/.test(name)) return false;
  return new TextEncoder().encode(name).length <= 128;
}

function randomTag() {
  const c = globalThis.crypto;
  if (c && c.getRandomValues) {
    const a = new Uint32Array(2);
    c.getRandomValues(a);
    return a[0].toString(36) + a[1].toString(36);
  }
  return Math.random().toString(36).slice(2, 14);
}

// '/ws' on a page: the same host, ws: or wss: after the page's scheme
function resolveUrl(url) {
  const loc = globalThis.location;
  if (typeof url === 'string' && url.startsWith('/') && loc && loc.host)
    return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + url;
  return String(url);
}

export class RtwsClient {
  constructor(url, options = {}) {
    this.options = Object.assign({}, DEFAULTS, options);
    const WS = this.options.WebSocket || globalThis.WebSocket;
    if (typeof WS !== 'function')
      throw new TypeError('rtws: no WebSocket here: pass options.WebSocket (on Node 20: the ws package)');
    this._WS = WS;
    this.url = resolveUrl(url);
    this.state = 'closed';
    this.user = '';
    this.session = this.options.session || '';
    this.resumed = false;
    this.heartbeat = 0; // the server's, from welcome
    this.rtt = NaN; // last round trip, ms
    this.stats = { connects: 0, reconnects: 0, received: 0, duplicates: 0, resent: 0 };
    this._ls = new Map(); // event type -> Set of listeners
    this._subs = new Map(); // channel -> { handler, last, sent, status, presence, members }
    this._pending = new Map(); // publish id -> { id, channel, text }, in id order
    this._idTag = randomTag();
    this._nextId = 0;
    this._ws = null;
    this._ready = false; // welcome seen on the current connection
    this._closing = false;
    this._attempt = 0;
    this._openedAt = 0;
    this._startedAt = 0;
    this._lastRx = 0;
    this._pings = new Map(); // ts sent -> { at, resolve, reject }
    this._lastPingAt = 0;
    this._pingTs = 0;
    this._wire = []; // { text, id } waiting for the pacer, current connection only
    this._tokens = this.options.rateBurst;
    this._tokensAt = now();
    this._pauseUntil = 0;
    this._timers = { retry: 0, tick: 0, pump: 0, resume: 0 };
    this._resumeFrom = null;
    if (this.options.autoConnect) Promise.resolve().then(() => { if (this.state === 'closed' && !this._closing) this.connect(); });
  }

  // ---- events: on(type, fn) returns a function that removes fn ----
  on(type, fn) {
    if (!this._ls.has(type)) this._ls.set(type, new Set());
    this._ls.get(type).add(fn);
    return () => this.off(type, fn);
  }
  off(type, fn) {
    const s = this._ls.get(type);
    if (s) s.delete(fn);
    return this;
  }
  once(type, fn) {
    const off = this.on(type, (e) => { off(); fn(e); });
    return off;
  }
  _emit(type, ev) {
    const s = this._ls.get(type);
    if (!s) return;
    for (const fn of [...s]) {
      try { fn(ev); } catch (err) { setTimeout(() => { throw err; }); } // a listener's bug is not the client's
    }
  }

  // ---- connection ----
  connect() {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting') return;
    if (this._ws) { this._kill(this._ws); this._detach(1000, 'connect'); } // still closing
    this._closing = false;
    this._attempt = 0;
    this._open();
  }

  // A clean close: no reconnect. Pending publishes stay (connect() resends them).
  close(code = 1000, reason = '') {
    this._closing = true;
    clearTimeout(this._timers.retry);
    clearTimeout(this._timers.resume);
    const ws = this._ws;
    if (!ws) { if (this.state !== 'closed') this._setState('closed', { code, reason }); return; }
    this._setState('closing', {});
    if (ws.readyState === WS_OPEN) {
      try { ws.close(code, reason); } catch (e) { this._lost(code, reason); return; }
      // a server that never answers the close: give up waiting after a while
      this._timers.retry = setTimeout(() => { if (this._ws === ws) { this._kill(ws); this._lost(1006, 'close timeout'); } }, 3000);
    } else {
      this._kill(ws);
      this._lost(code, reason);
    }
  }

  // Drops the current connection, as a network loss would, and connects again
  // after delayMs (session, subscriptions and unacked publishes are kept).
  reconnect(delayMs = 0) {
    if (this._closing) return;
    if (this._ws) this._kill(this._ws);
    this._detach(1006, 'reconnect');
    clearTimeout(this._timers.retry);
    this._setState('reconnecting', { attempt: this._attempt, delay: delayMs, code: 1006, reason: 'reconnect' });
    this._timers.retry = setTimeout(() => this._open(), delayMs);
  }

  _setState(state, info) {
    const previous = this.state;
    this.state = state;
    this._emit('state', Object.assign({ state, previous }, info));
  }

  _open() {
    clearTimeout(this._timers.retry);
    let u = this.url;
    if (this.session) u += (u.includes('?') ? '&' : '?') + 'session=' + encodeURIComponent(this.session);
    if (this.stats.connects > 0) this.stats.reconnects++;
    this.stats.connects++;
    this._setState('connecting', { attempt: this._attempt });
    if (this.state !== 'connecting') return; // a listener closed it
    let ws;
    try {
      ws = new this._WS(u);
    } catch (err) {
      // a malformed URL cannot get better by retrying
      this._setState('failed', { code: 0, reason: String(err && err.message ? err.message : err) });
      return;
    }
    this._ws = ws;
    this._ready = false;
    this._startedAt = now();
    this._openedAt = 0;
    this._lastRx = now();
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._openedAt = now();
      this._lastRx = this._openedAt;
      this._tokens = this.options.rateBurst;
      this._tokensAt = this._openedAt;
      this._setState('open', {});
    };
    ws.onmessage = (e) => {
      if (this._ws !== ws) return;
      this._lastRx = now();
      this._onText(typeof e.data === 'string' ? e.data : String(e.data));
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._lost(e.code, e.reason || '');
    };
    ws.onerror = noop; // a close event follows
    const tick = Math.max(20, Math.min(this.options.pingIntervalMs, this.options.pongTimeoutMs) / 4);
    this._timers.tick = setInterval(() => this._tick(), tick);
  }

  // Stops listening to ws and makes sure it goes away (terminate() where the
  // constructor has it, e.g. the ws package: a dead link would never finish a
  // close handshake).
  _kill(ws) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = noop;
    try {
      if (typeof ws.terminate === 'function') ws.terminate();
      else ws.close(4000, 'rtws: link lost');
    } catch (e) { /* closing anyway */ }
  }

  // Forgets the connection and everything bound to it.
  _detach(code, reason) {
    this._ws = null;
    this._ready = false;
    this._wire = [];
    clearInterval(this._timers.tick);
    clearTimeout(this._timers.pump);
    clearTimeout(this._timers.resume);
    this._pauseUntil = 0;
    this._timers.resume = 0;
    for (const s of this._subs.values()) s.sent = false;
    for (const p of this._pings.values()) p.reject(new Error('rtws: connection lost (' + code + (reason ? ' ' + reason : '') + ')'));
    this._pings.clear();
    if (this._openedAt && now() - this._openedAt >= this.options.stableMs) this._attempt = 0;
    this._openedAt = 0;
  }

  _lost(code, reason) {
    clearTimeout(this._timers.retry);
    this._detach(code, reason);
    if (this._closing) {
      this._setState('closed', { code, reason });
      return;
    }
    if (!this.options.reconnectOnPolicy && (code === 1008 || (code >= 4000 && code <= 4999))) {
      this._setState('failed', { code, reason });
      return;
    }
    this._attempt++;
    if (this.options.maxAttempts && this._attempt > this.options.maxAttempts) {
      this._setState('failed', { code, reason });
      return;
    }
    // full jitter: uniform in [0, bound], so a crowd of clients spreads out
    const bound = backoffBound(this._attempt, this.options.backoffBaseMs, this.options.backoffFactor, this.options.backoffMaxMs);
    const delay = Math.floor(this.options.random() * (bound + 1));
    this._setState('reconnecting', { attempt: this._attempt, delay, code, reason });
    if (this.state !== 'reconnecting') return;
    this._timers.retry = setTimeout(() => this._open(), delay);
  }

  // heartbeat: a ping every pingIntervalMs; a ping unanswered and nothing at
  // all received for pongTimeoutMs means the link is dead (a half-open TCP
  // connection never closes by itself)
  _tick() {
    const ws = this._ws, t = now();
    if (!ws) return;
    if (!this._ready) {
      if (t - this._startedAt >= this.options.connectTimeoutMs) {
        this._kill(ws);
        this._lost(1006, 'no welcome in time');
      }
      return;
    }
    if (t - this._lastPingAt >= this.options.pingIntervalMs) this._sendPing(null);
    const oldest = this._pings.values().next().value;
    if (oldest && t - oldest.at >= this.options.pongTimeoutMs && t - this._lastRx >= this.options.pongTimeoutMs) {
      this._kill(ws);
      this._lost(1006, 'heartbeat timeout');
    }
  }

  _sendPing(waiter) {
    const t = now();
    const ts = (this._pingTs = Math.max(Date.now(), this._pingTs + 1));
    this._lastPingAt = t;
    this._pings.set(ts, { at: t, resolve: waiter ? waiter.resolve : noop, reject: waiter ? waiter.reject : noop });
    this._takeToken(true);
    this._ws.send(JSON.stringify({ type: 'ping', ts }));
  }

  // The round trip now, in ms (rejects when not connected or when the link drops).
  ping() {
    return new Promise((resolve, reject) => {
      if (!this._ready || !this._ws) { reject(new Error('rtws: not connected')); return; }
      this._sendPing({ resolve, reject });
    });
  }

  // ---- the pacer: every request goes out through _wire ----
  _takeToken(force) {
    const rate = this.options.ratePerSec;
    if (!rate) return true;
    const t = now();
    this._tokens = Math.min(this.options.rateBurst, this._tokens + ((t - this._tokensAt) * rate) / 1000);
    this._tokensAt = t;
    if (this._tokens >= 1 || force) { this._tokens -= 1; return true; }
    return false;
  }

  _queue(text, id) {
    this._wire.push({ text, id });
    this._pump();
  }

  _pump() {
    clearTimeout(this._timers.pump);
    const ws = this._ws;
    if (!ws || !this._ready || ws.readyState !== WS_OPEN) return;
    while (this._wire.length) {
      const wait = this._pauseUntil - now();
      if (wait > 0) { this._timers.pump = setTimeout(() => this._pump(), wait); return; }
      if (!this._takeToken(false)) {
        const need = ((1 - this._tokens) * 1000) / this.options.ratePerSec;
        this._timers.pump = setTimeout(() => this._pump(), Math.max(1, Math.ceil(need)));
        return;
      }
      const w = this._wire.shift();
      if (w.id) {
        const p = this._pending.get(w.id);
        if (!p) continue; // acked meanwhile (a resend after a pause)
        if (++p.sends > 1) this.stats.resent++;
      }
      ws.send(w.text);
    }
  }

  // ---- channels ----
  // Subscribes now (or at the next welcome) and after every reconnect, with
  // since = the last seq delivered. opts.since: start from there (0: all the
  // history the server still has); handler: this channel's messages.
  subscribe(channel, opts = {}, handler = null) {
    if (typeof opts === 'function') { handler = opts; opts = {}; }
    if (!validChannel(channel)) throw new TypeError('rtws: channel must be 1 to 128 printable bytes');
    let s = this._subs.get(channel);
    if (!s) {
      s = { handler: null, last: null, sent: false, status: '', presence: new Map(), members: 0 };
      this._subs.set(channel, s);
    }
    if (handler) s.handler = handler;
    if (opts.since !== undefined && opts.since !== null) s.last = Number(opts.since);
    if (this._ready && !s.sent) this._sendSubscribe(channel, s);
  }

  unsubscribe(channel) {
    const s = this._subs.get(channel);
    if (!s) return false;
    this._subs.delete(channel);
    if (this._ready && s.sent) this._queue(JSON.stringify({ type: 'unsubscribe', channel }));
    return true;
  }

  _sendSubscribe(channel, s) {
    const m = { type: 'subscribe', channel };
    if (s.last !== null) m.since = s.last;
    s.sent = true;
    this._queue(JSON.stringify(m));
  }

  // This user's status in a channel ('away', 'typing', ...); kept and set
  // again after a reconnect. Returns whether it went out now.
  setPresence(channel, status) {
    const s = this._subs.get(channel);
    if (!s) throw new Error('rtws: not subscribed to ' + channel);
    s.status = status;
    if (!this._ready || !s.sent) return false;
    this._queue(JSON.stringify({ type: 'presence', channel, status }));
    return true;
  }

  // Who is in the channel: user -> status (empty in channels too big for presence).
  presence(channel) {
    const s = this._subs.get(channel);
    return s ? new Map(s.presence) : new Map();
  }

  lastSeq(channel) {
    const s = this._subs.get(channel);
    return s && s.last !== null ? s.last : 0;
  }

  get channels() { return [...this._subs.keys()]; }
  get unacked() { return this._pending.size; }

  // ---- publishing ----
  // Publishes data (any JSON value) with a fresh id and returns the id; kept
  // and resent after reconnects until the server acks it. opts.event
  // (default 'message'), opts.id (your own id, 1-64 bytes, unique per session).
  publish(channel, data, opts = {}) {
    if (!validChannel(channel)) throw new TypeError('rtws: channel must be 1 to 128 printable bytes');
    if (this._pending.size >= this.options.maxUnacked) throw new RangeError('rtws: ' + this._pending.size + ' publishes wait for their ack (maxUnacked)');
    const id = opts.id !== undefined ? opts.id : this._idTag + '-' + ++this._nextId;
    if (typeof id !== 'string' || !id || new TextEncoder().encode(id).length > 64 || /[\x00-\x1f\x7f]/.test(id))
      throw new TypeError('rtws: a publish id is 1 to 64 bytes without control characters');
    if (this._pending.has(id)) throw new Error('rtws: publish id ' + id + ' is still waiting for its ack');
    const text = JSON.stringify({ type: 'publish', channel, event: opts.event || 'message', data: data === undefined ? null : data, id });
    this._pending.set(id, { id, channel, text, sends: 0 });
    if (this._ready) this._queue(text, id);
    return id;
  }

  // After welcome: auth (queued before the connection counts as ready),
  // then subscriptions with since, statuses, and every publish not acked
  // yet, in id order.
  _authenticate() {
    const tok = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
    if (tok) this._queue(JSON.stringify({ type: 'auth', token: tok, session: this.session }));
  }

  _resume() {
    for (const [ch, s] of this._subs) {
      this._sendSubscribe(ch, s);
      if (s.status && s.status !== 'online') this._queue(JSON.stringify({ type: 'presence', channel: ch, status: s.status }));
    }
    this._resendFrom(null);
  }

  _resendFrom(fromId) {
    let on = fromId === null || !this._pending.has(fromId);
    for (const p of this._pending.values()) {
      if (!on && p.id === fromId) on = true;
      if (!on || this._wire.some((w) => w.id === p.id)) continue;
      this._queue(p.text, p.id);
    }
  }

  // rate_limited: nothing goes out for retry_after_ms; then the refused
  // publish (the error's id; without one, every unacked publish) and the
  // ones after it are sent again, in order. The server de-duplicates by id.
  _rateLimited(m) {
    const wait = typeof m.retry_after_ms === 'number' && m.retry_after_ms >= 0 ? m.retry_after_ms : this.options.retryAfterMs;
    this._pauseUntil = Math.max(this._pauseUntil, now() + wait);
    const from = m.id && this._pending.has(m.id) ? m.id : null;
    // one resend per pause, from the earliest publish refused during it
    if (!this._timers.resume || (this._resumeFrom !== null && (from === null || this._idOrder(from) < this._idOrder(this._resumeFrom))))
      this._resumeFrom = from;
    clearTimeout(this._timers.resume);
    const delay = Math.max(0, this._pauseUntil - now());
    this._timers.resume = setTimeout(() => {
      this._timers.resume = 0;
      if (!this._ready) return;
      // the publishes queued behind the pause go again with the rest, in order
      this._wire = this._wire.filter((w) => !w.id);
      this._resendFrom(this._resumeFrom);
      this._resumeFrom = null;
    }, delay);
    this._pump();
  }

  _idOrder(id) {
    let i = 0;
    for (const k of this._pending.keys()) { if (k === id) return i; i++; }
    return i;
  }

  // ---- what the server says ----
  _onText(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
    this.stats.received++;
    const s = typeof m.channel === 'string' ? this._subs.get(m.channel) : undefined;
    switch (m.type) {
      case 'welcome':
        this.user = String(m.user || '');
        this.session = String(m.session || '');
        this.resumed = m.resumed === true;
        this.heartbeat = Number(m.heartbeat) || 0;
        this._lastPingAt = now();
        this._authenticate(); // first of all
        // what a listener subscribes or publishes here goes out with the rest, in order
        this._emit('welcome', { user: this.user, session: this.session, resumed: this.resumed, heartbeat: this.heartbeat, auth: m.auth, time: m.time });
        if (this._closing || !this._ws) return; // a listener closed it
        this._ready = true;
        this._resume();
        if (this._ws) this._sendPing(null); // a first round trip
        break;
      case 'authenticated':
        this.user = String(m.user || '');
        this.session = String(m.session || '');
        this._emit('authenticated', { user: this.user, session: this.session });
        break;
      case 'subscribed':
        if (s) {
          if (s.last === null) s.last = Number(m.seq) || 0; // first subscription: live from here
          s.members = Number(m.members) || 0;
          s.presence = new Map();
          if (Array.isArray(m.presence)) for (const p of m.presence) s.presence.set(p.user, p.status);
        }
        this._emit('subscribed', { channel: m.channel, seq: m.seq, id: m.id, members: m.members, presence: Array.isArray(m.presence) ? m.presence : null });
        break;
      case 'unsubscribed':
        this._emit('unsubscribed', { channel: m.channel, id: m.id });
        break;
      case 'message': {
        const seq = Number(m.seq) || 0;
        if (s) {
          if (s.last !== null && seq <= s.last) { this.stats.duplicates++; return; } // seen already (replay overlap)
          s.last = seq;
        }
        const msg = { channel: m.channel, event: m.event, data: m.data === undefined ? null : m.data, seq, from: m.from, ts: m.ts };
        if (s && s.handler) { try { s.handler(msg); } catch (err) { setTimeout(() => { throw err; }); } }
        this._emit('message', msg);
        break;
      }
      case 'reset':
        if (s) s.last = Number(m.seq) || 0;
        this._emit('reset', { channel: m.channel, seq: Number(m.seq) || 0 });
        break;
      case 'ack': {
        const p = this._pending.get(m.id);
        this._pending.delete(m.id);
        this._emit('ack', { id: m.id, seq: Number(m.seq) || 0, duplicate: m.duplicate === true, channel: p ? p.channel : undefined });
        break;
      }
      case 'presence':
        if (s) {
          if (m.status === 'joined') s.presence.set(m.user, 'online');
          else if (m.status === 'left') s.presence.delete(m.user);
          else s.presence.set(m.user, m.status);
        }
        this._emit('presence', { channel: m.channel, user: m.user, status: m.status });
        break;
      case 'pong': {
        const p = this._pings.get(m.ts);
        if (!p) break;
        for (const [k, q] of this._pings) { // answered in order: older ones are gone
          this._pings.delete(k);
          if (k === m.ts) break;
          q.reject(new Error('rtws: ping lost'));
        }
        this.rtt = now() - p.at;
        this._emit('latency', { rtt: this.rtt });
        p.resolve(this.rtt);
        break;
      }
      case 'error': {
        const ev = { code: m.code, message: m.message, id: m.id, retryAfterMs: m.retry_after_ms, publish: null };
        if (m.code === 'rate_limited') this._rateLimited(m);
        else if (m.id && this._pending.has(m.id) && m.code !== 'internal') {
          // refused: it would be refused again, stop resending it
          const p = this._pending.get(m.id);
          this._pending.delete(m.id);
          ev.publish = { id: p.id, channel: p.channel, message: JSON.parse(p.text) };
        }
        this._emit('error', ev);
        break;
      }
      default:
        break;
    }
    this._emit('raw', m);
  }
}

export default RtwsClient;
