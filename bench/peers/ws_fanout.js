// Node `ws` fan-out server for the rtws bench: the part of the rtws realtime
// protocol (docs/PROTOCOL.md) the fan-out scenario uses, with a broadcast by
// hand. welcome on open; subscribe -> the socket joins the channel's Set and
// gets subscribed (with the channel's seq); publish -> seq++, the message
// string (fields as rtws sends them: type, channel, event, data, seq, from,
// ts) built once, then send(str) to every socket of the Set. Anything else is
// answered with an error, as rtws does. No compression, 16 MiB payload cap, a
// ping every 30 s (the heartbeat pattern from ws's README), 127.0.0.1 only.
// usage: node ws_fanout.js PORT   (prints "listening on 127.0.0.1:PORT")
'use strict';
const crypto = require('crypto');
const { WebSocketServer } = require('ws');
const port = parseInt(process.argv[2] || '9001', 10);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 16 << 20 });
const channels = new Map(); // name -> { seq, subs: Set of sockets }

function channel(name) {
  let ch = channels.get(name);
  if (!ch) { ch = { seq: 0, subs: new Set() }; channels.set(name, ch); }
  return ch;
}
function error(ws, code, message) {
  ws.send(JSON.stringify({ type: 'error', code, message }));
}

wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.user = 'anon-' + crypto.randomBytes(4).toString('hex');
  ws.channels = new Set();
  ws.on('pong', () => { ws.isAlive = true; });
  ws.on('error', () => {});
  ws.on('close', () => { for (const name of ws.channels) channels.get(name).subs.delete(ws); });
  ws.on('message', (raw, isBinary) => {
    let m;
    try { m = isBinary ? null : JSON.parse(raw.toString()); } catch (e) { m = null; }
    if (!m || typeof m.type !== 'string') return error(ws, 'bad_request', 'not a protocol message');
    if ((m.type === 'subscribe' || m.type === 'publish') && typeof m.channel !== 'string')
      return error(ws, 'bad_request', 'channel must be 1 to 128 printable bytes');
    if (m.type === 'subscribe') {
      const ch = channel(m.channel);
      ch.subs.add(ws);
      ws.channels.add(m.channel);
      ws.send(JSON.stringify({ type: 'subscribed', channel: m.channel, seq: ch.seq, members: ch.subs.size }));
    } else if (m.type === 'publish') {
      const ch = channel(m.channel);
      const msg = JSON.stringify({
        type: 'message', channel: m.channel, event: typeof m.event === 'string' ? m.event : 'message',
        data: m.data === undefined ? null : m.data, seq: ++ch.seq, from: ws.user, ts: Date.now(),
      });
      for (const s of ch.subs) s.send(msg);
    } else {
      error(ws, 'bad_request', 'unknown type');
    }
  });
  ws.send(JSON.stringify({
    type: 'welcome', user: ws.user, session: crypto.randomBytes(16).toString('base64url'),
    time: Date.now(), heartbeat: 30000, auth: 'optional', resumed: false,
  }));
});
const beat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) { ws.terminate(); continue; }
    ws.isAlive = false;
    ws.ping();
  }
}, 30000);
wss.on('close', () => clearInterval(beat));
wss.on('listening', () => console.log(`listening on 127.0.0.1:${wss.address().port}`));
process.on('SIGTERM', () => process.exit(0));
