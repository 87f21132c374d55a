// Node ws with permessage-deflate, for tests/interop_pmd.sh.
//   node pmd_node.js server [--port P] [PARAMS]   echo server: "listening on
//        127.0.0.1:P", then "ext: VALUE" per connection
//   node pmd_node.js client URL [PARAMS]          text and binary of 0 B-1 MiB,
//        every echo checked, the extension required: "N passed, M failed"
//   PARAMS: --snt --cnt (no context takeover, server / client), --sbits N,
//           --cbits N (max window bits), --help
'use strict';
const WebSocket = require('ws');
const a = process.argv.slice(2);
if (a.includes('--help')) {
  console.log('usage: node pmd_node.js server [--port P] [PARAMS] | client URL [PARAMS]\n' +
              '  PARAMS: --snt --cnt --sbits N --cbits N');
  process.exit(0);
}
const arg = (k) => { const i = a.indexOf(k); return i >= 0 ? Number(a[i + 1]) : undefined; };
const pmd = { threshold: 0 }; // the takeover options only when given: ws treats false as "refuse it"
if (a.includes('--snt')) pmd.serverNoContextTakeover = true;
if (a.includes('--cnt')) pmd.clientNoContextTakeover = true;
if (arg('--sbits')) pmd.serverMaxWindowBits = arg('--sbits');
if (arg('--cbits')) pmd.clientMaxWindowBits = arg('--cbits');
function payload(n, k) {
  let s = '';
  while (s.length < n) s += `{"type":"message","seq":${k++},"text":"hi"},`;
  return s.slice(0, n);
}
if (a[0] === 'server') {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: arg('--port') || 0, perMessageDeflate: pmd,
                                     maxPayload: 64 << 20 });
  wss.on('listening', () => console.log(`listening on 127.0.0.1:${wss.address().port}`));
  wss.on('connection', (ws) => {
    console.log(`ext: ${ws.extensions}`);
    ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary }));
  });
} else {
  const ws = new WebSocket(a[1], { perMessageDeflate: pmd, maxPayload: 64 << 20 });
  const sizes = [0, 100, 5000, 70000, 1 << 20];
  let i = 0, passed = 0, failed = 0, expect;
  const next = () => {
    if (i === 2 * sizes.length) return ws.close(1000);
    const s = payload(sizes[i >> 1], i);
    expect = i % 2 ? Buffer.from(s) : s;
    ws.send(expect, { binary: i % 2 === 1 });
  };
  ws.on('open', () => {
    console.log(`ext: ${ws.extensions}`);
    if (!ws.extensions.includes('permessage-deflate')) { failed++; console.log('FAILED: not agreed'); }
    next();
  });
  ws.on('message', (m, isBinary) => {
    const ok = (i % 2 === 1) === isBinary && (isBinary ? Buffer.compare(m, expect) === 0 : m.toString() === expect);
    if (ok) passed++; else { failed++; console.log(`FAILED: echo ${i}`); }
    i++;
    next();
  });
  ws.on('close', () => {
    if (i !== 2 * sizes.length) failed++;
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
  ws.on('error', (e) => { console.log(`error: ${e.message}`); });
}
