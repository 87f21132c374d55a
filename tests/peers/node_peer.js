// Interop peer built on Node's `ws` package.
//   node node_peer.js client URL   runs the message matrix against an echo server,
//                                   ends with "N passed, M failed"
//   node node_peer.js server       echo server on 127.0.0.1 (port from the OS);
//                                   prints "listening on 127.0.0.1:PORT", then one
//                                   line "closed CODE" per connection that ends
'use strict';
const WebSocket = require('ws');

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 8 * 1024 * 1024];
const MAX = 16 * 1024 * 1024;

function payload(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 31) % 251;
  return b;
}

function client(url) {
  let passed = 0, failed = 0;
  const check = (ok, what) => { if (ok) passed++; else { failed++; console.log('FAILED: ' + what); } };
  const steps = [];
  for (const n of SIZES) {
    steps.push({ send: payload(n, n & 0xff), binary: true, what: 'binary ' + n });
    steps.push({ send: 'κόσμε-'.repeat(Math.floor(n / 12) + 1).slice(0, Math.floor(n / 2)), binary: false, what: 'text ' + n });
  }
  const ws = new WebSocket(url, { maxPayload: MAX });
  let i = 0;
  const timer = setTimeout(() => { check(false, 'timed out at step ' + i); finish(); }, 60000);
  let finished = false;
  function finish() {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    console.log(passed + ' passed, ' + failed + ' failed');
    process.exit(failed ? 1 : 0);
  }
  function next() {
    if (i < steps.length) {
      ws.send(steps[i].send, { binary: steps[i].binary });
    } else if (i === steps.length) {
      ws.ping(Buffer.from('are you there'));
    }
  }
  ws.on('open', next);
  ws.on('message', (data, isBinary) => {
    const s = steps[i];
    if (!s) { check(false, 'unexpected message'); return; }
    if (s.binary) check(isBinary && Buffer.compare(data, s.send) === 0, s.what);
    else check(!isBinary && data.toString('utf8') === s.send, s.what);
    i++;
    next();
  });
  ws.on('pong', (data) => {
    check(data.toString() === 'are you there', 'pong payload');
    ws.close(4001, 'node done');
  });
  ws.on('close', (code) => {
    check(code === 4001, 'server echoed close code 4001 (got ' + code + ')');
    finish();
  });
  ws.on('error', (e) => { check(false, 'error ' + e.message); finish(); });
}

function server() {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, maxPayload: MAX }, () => {
    console.log('listening on 127.0.0.1:' + wss.address().port);
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('close', (code) => console.log('closed ' + code));
  });
  setTimeout(() => process.exit(0), 600000);
}

if (process.argv[2] === 'client' && process.argv[3]) client(process.argv[3]);
else if (process.argv[2] === 'server') server();
else { console.log('usage: node node_peer.js client URL | server'); process.exit(2); }
