// uWebSockets.js echo server for the rtws bench, loading the native binary
// that @trufflesuite/uws-js-unofficial ships (and failing, rather than using
// the package's pure-JS fallback, when it does not load). One process, no
// compression, 16 MiB payload cap (as rtws), automatic pings: uWS pings
// some seconds before idleTimeout runs out (its timers go in steps of 4 s).
// Measured with 1,000 idle connections over 35 s: idleTimeout 60 sent no
// ping, 32 sent two per connection, 46 one, so 46 gives a ping about 30 s
// into the silence, as rtws. 127.0.0.1 only.
// usage: node uws_echo.js PORT [COMPRESSION]   (prints "listening on 127.0.0.1:PORT")
//   COMPRESSION (or env UWS_COMPRESSION): off (default), shared or dedicated.
//   shared: uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR, one compressor and
//   one inflater for every socket, no window kept between messages in either
//   direction (uWS answers server_no_context_takeover and takes only clients
//   that compress each message alone). That is the closest to rtws's server
//   default: server_no_context_takeover, its compressor lent from the
//   context's pool for one message at a time (deflate_takeover 0), and an
//   inflater lent likewise when the client offers client_no_context_takeover.
//   dedicated: uWS.DEDICATED_COMPRESSOR_256KB | uWS.DEDICATED_DECOMPRESSOR_32KB
//   (a window per socket each way, context takeover), for comparison with
//   rtws's deflate_takeover 1. With compression on, every echo is sent with
//   compress = true (uWS compresses only what send() is asked to).
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
const mode = process.argv[3] || process.env.UWS_COMPRESSION || 'off';
const COMPRESSION = {
  off: uWS.DISABLED,
  shared: uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR,
  dedicated: uWS.DEDICATED_COMPRESSOR_256KB | uWS.DEDICATED_DECOMPRESSOR_32KB,
};
if (!(mode in COMPRESSION)) {
  console.error(`uws_echo: compression ${mode}: use off, shared or dedicated`);
  process.exit(2);
}
const compress = mode !== 'off';
uWS.App().ws('/*', {
  compression: COMPRESSION[mode],
  maxPayloadLength: 16 << 20,
  maxBackpressure: 64 << 20,
  idleTimeout: 46,
  sendPingsAutomatically: true,
  message: (ws, message, isBinary) => { ws.send(message, isBinary, compress); },
}).listen('127.0.0.1', port, (token) => {
  if (!token) { console.error(`uws_echo: cannot listen on ${port}`); process.exit(1); }
  console.log(`listening on 127.0.0.1:${uWS.us_socket_local_port(token)}`);
});
process.on('SIGTERM', () => process.exit(0));
