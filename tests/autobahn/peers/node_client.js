// Autobahn-style test client on top of the Node "ws" package.
// Usage: NODE_PATH=/path/to/node_modules node node_client.js ws://127.0.0.1:PORT AGENT
'use strict';
const WebSocket = require('ws');
const base = process.argv[2] || 'ws://127.0.0.1:9001';
const agent = process.argv[3] || 'node-ws';
const opts = { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, maxFragments: 1 << 20,
               handshakeTimeout: 5000 };

function open(path, onMessage) {
  return new Promise((resolve) => {
    const ws = new WebSocket(base + path, opts);
    let done = false;
    const finish = () => { if (!done) { done = true; resolve(); } };
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
    ws.on('close', finish);
    ws.on('error', () => { ws.terminate(); finish(); });
  });
}

(async () => {
  let count = 0;
  await open('/getCaseCount', (ws, data) => { count = Number(data.toString()); });
  for (let i = 1; i <= count; i++) {
    await open(`/runCase?case=${i}&agent=${encodeURIComponent(agent)}`,
               (ws, data, isBinary) => ws.send(data, { binary: isBinary }));
  }
  await open(`/updateReports?agent=${encodeURIComponent(agent)}`, () => {});
  console.error(`node client: ran ${count} cases`);
})();
