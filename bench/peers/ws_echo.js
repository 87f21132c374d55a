// Node `ws` echo server for the rtws bench: one process, no compression,
// 16 MiB payload cap (as rtws), a ping every 30 s (the heartbeat pattern from
// ws's README), 127.0.0.1 only.
// usage: node ws_echo.js PORT   (prints "listening on 127.0.0.1:PORT")
'use strict';
const { WebSocketServer } = require('ws');
const port = parseInt(process.argv[2] || '9001', 10);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 16 << 20 });
wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.on('pong', () => { ws.isAlive = true; });
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
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
