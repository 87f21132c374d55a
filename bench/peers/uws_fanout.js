// uWebSockets.js fan-out server for the rtws bench: the part of the rtws
// realtime protocol (docs/PROTOCOL.md) the fan-out scenario uses, on uWS's own
// pub/sub topics. welcome on open; subscribe -> ws.subscribe(channel) and
// subscribed (with the channel's seq); publish -> seq++ and one
// app.publish(channel, message) with the fields rtws sends (type, channel,
// event, data, seq, from, ts), the string built once per publish. Anything
// else is answered with an error, as rtws does. Loads the native binary of
// @trufflesuite/uws-js-unofficial as uws_echo.js does (no pure-JS fallback).
// No compression, 16 MiB payload cap, 64 MiB backpressure per socket, pings
// after about 30 s of silence (idleTimeout 60), 127.0.0.1 only.
// usage: node uws_fanout.js PORT   (prints "listening on 127.0.0.1:PORT")
'use strict';
const path = require('path');
const crypto = require('crypto');
const pkg = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
const bin = path.join(pkg, 'binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
let uWS;
try {
  uWS = require(bin);
} catch (e) {
  console.error(`uws_fanout: native uWebSockets binary does not load on Node ${process.version}: ${e.message}`);
  process.exit(3);
}
const port = parseInt(process.argv[2] || '9001', 10);
const channels = new Map(); // name -> { seq, members }
const decoder = new TextDecoder();

function channel(name) {
  let ch = channels.get(name);
  if (!ch) { ch = { seq: 0, members: 0 }; channels.set(name, ch); }
  return ch;
}
function error(ws, code, message) {
  ws.send(JSON.stringify({ type: 'error', code, message }), false);
}

const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 << 20,
  maxBackpressure: 64 << 20,
  idleTimeout: 60,
  sendPingsAutomatically: true,
  open: (ws) => {
    const d = ws.getUserData();
    d.user = 'anon-' + crypto.randomBytes(4).toString('hex');
    d.channels = new Set();
    ws.send(JSON.stringify({
      type: 'welcome', user: d.user, session: crypto.randomBytes(16).toString('base64url'),
      time: Date.now(), heartbeat: 30000, auth: 'optional', resumed: false,
    }), false);
  },
  message: (ws, message, isBinary) => {
    let m;
    try { m = isBinary ? null : JSON.parse(decoder.decode(message)); } catch (e) { m = null; }
    if (!m || typeof m.type !== 'string') return error(ws, 'bad_request', 'not a protocol message');
    const d = ws.getUserData();
    if ((m.type === 'subscribe' || m.type === 'publish') && typeof m.channel !== 'string')
      return error(ws, 'bad_request', 'channel must be 1 to 128 printable bytes');
    if (m.type === 'subscribe') {
      const ch = channel(m.channel);
      if (!d.channels.has(m.channel)) { d.channels.add(m.channel); ch.members++; ws.subscribe(m.channel); }
      ws.send(JSON.stringify({ type: 'subscribed', channel: m.channel, seq: ch.seq, members: ch.members }), false);
    } else if (m.type === 'publish') {
      const ch = channel(m.channel);
      const msg = JSON.stringify({
        type: 'message', channel: m.channel, event: typeof m.event === 'string' ? m.event : 'message',
        data: m.data === undefined ? null : m.data, seq: ++ch.seq, from: d.user, ts: Date.now(),
      });
      app.publish(m.channel, msg, false);
    } else {
      error(ws, 'bad_request', 'unknown type');
    }
  },
  close: (ws) => {
    // uWS unsubscribes a closed socket from its topics by itself
    for (const name of ws.getUserData().channels) channels.get(name).members--;
  },
}).listen('127.0.0.1', port, (token) => {
  if (!token) { console.error(`uws_fanout: cannot listen on ${port}`); process.exit(1); }
  console.log(`listening on 127.0.0.1:${uWS.us_socket_local_port(token)}`);
});
process.on('SIGTERM', () => process.exit(0));
