// uWebSockets.js echo server for the rtws bench, loading the native binary
// that @trufflesuite/uws-js-unofficial ships (and failing, rather than using
// the package's pure-JS fallback, when it does not load). One process, no
// compression, 16 MiB payload cap (as rtws), automatic pings: uWS pings
// some seconds before idleTimeout runs out (its timers go in steps of 4 s).
// Measured with 1,000 idle connections over 35 s: idleTimeout 60 sent no
// ping, 32 sent two per connection, 46 one, so 46 gives a ping about 30 s
// into the silence, as rtws. 127.0.0.1 only.
// usage: node uws_echo.js PORT   (prints "listening on 127.0.0.1:PORT")
'use strict';
const path = require('path');
const pkg = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
const bin = path.join(pkg, 'binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
let uWS;
try {
  uWS = require(bin);
} catch (e) {
  console.error(`uws_echo: native uWebSockets binary does not load on Node ${process.version}: ${e.message}`);
  process.exit(3);
}
const port = parseInt(process.argv[2] || '9001', 10);
uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 << 20,
  maxBackpressure: 64 << 20,
  idleTimeout: 46,
  sendPingsAutomatically: true,
  message: (ws, message, isBinary) => { ws.send(message, isBinary); },
}).listen('127.0.0.1', port, (token) => {
  if (!token) { console.error(`uws_echo: cannot listen on ${port}`); process.exit(1); }
  console.log(`listening on 127.0.0.1:${uWS.us_socket_local_port(token)}`);
});
process.on('SIGTERM', () => process.exit(0));
