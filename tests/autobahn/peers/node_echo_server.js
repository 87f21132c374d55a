// Echo server on top of the Node "ws" package, used to validate suite.py.
// Usage: NODE_PATH=/path/to/node_modules node node_echo_server.js PORT
'use strict';
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2] || 9002);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false,
                                  maxPayload: 64 * 1024 * 1024, maxFragments: 1 << 20 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`listening on 127.0.0.1:${port}`));
