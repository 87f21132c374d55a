// Drives headless Chromium over the Chrome DevTools Protocol (Node built-ins
// only, plus a WebSocket: Node's own, or `ws` when this Node has none) against
// examples/chat_server. Two pages join room "lobby"; checks presence, typing,
// a chat message both ways, resume after a dropped connection, the status
// page; saves screenshots (SCREENSHOT.png at the end, SCREENSHOT_typing.png
// while A types). Prints "ok: ..."/"FAILED: ..." lines and ends with
// "N passed, M failed".
//   node tests/interop_browser.js DEVTOOLS_WS_URL http://127.0.0.1:PORT/ SCREENSHOT.png
'use strict';
const fs = require('fs');
const WS = globalThis.WebSocket || require('ws');

const [devtools, pageUrl, shot] = process.argv.slice(2);
let pass = 0, fail = 0;
const ok = (what) => { pass++; console.log('ok: ' + what); };
const bad = (what, why) => { fail++; console.log('FAILED: ' + what + (why ? ' (' + why + ')' : '')); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// one CDP connection; commands carry an optional sessionId (flattened targets)
function cdp(url) {
  return new Promise((resolve, reject) => {
    const ws = new WS(url);
    let next = 1;
    const waiting = new Map();
    const onMessage = (data) => {
      const m = JSON.parse(typeof data === 'string' ? data : data.toString());
      if (m.id && waiting.has(m.id)) {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.error) w.reject(new Error(m.error.message));
        else w.resolve(m.result);
      }
    };
    if (ws.addEventListener) ws.addEventListener('message', (e) => onMessage(e.data));
    else ws.on('message', onMessage);
    const send = (method, params, sessionId) => new Promise((res, rej) => {
      const id = next++;
      waiting.set(id, { resolve: res, reject: rej });
      const msg = { id, method, params: params || {} };
      if (sessionId) msg.sessionId = sessionId;
      ws.send(JSON.stringify(msg));
    });
    const opened = () => resolve({ send, close: () => ws.close() });
    if (ws.addEventListener) {
      ws.addEventListener('open', opened);
      ws.addEventListener('error', () => reject(new Error('cannot reach DevTools at ' + url)));
    } else {
      ws.on('open', opened);
      ws.on('error', reject);
    }
  });
}

async function openPage(b, url) {
  const { targetId } = await b.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await b.send('Target.attachToTarget', { targetId, flatten: true });
  const page = {
    targetId,
    eval: async (expr) => {
      const r = await b.send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true }, sessionId);
      if (r.exceptionDetails) throw new Error(r.exceptionDetails.text + ' in ' + expr);
      return r.result.value;
    },
    send: (m, p) => b.send(m, p, sessionId),
  };
  await page.send('Emulation.setDeviceMetricsOverride', { width: 1000, height: 620, deviceScaleFactor: 1, mobile: false });
  await page.send('Page.navigate', { url });
  return page;
}

// polls expr in page until it is truthy or ms pass; returns the last value
async function until(page, expr, ms) {
  const end = Date.now() + ms;
  let v;
  for (;;) {
    try { v = await page.eval(expr); } catch (e) { v = undefined; }
    if (v || Date.now() > end) return v;
    await sleep(100);
  }
}

const $text = (id) => `(document.getElementById('${id}') || {}).textContent`;

async function main() {
  const b = await cdp(devtools);
  const A = await openPage(b, pageUrl);
  const B = await openPage(b, pageUrl);

  const upA = await until(A, `${$text('status')}.startsWith('connected')`, 10000);
  const upB = await until(B, `${$text('status')}.startsWith('connected')`, 10000);
  upA && upB ? ok('both pages connected over ws://.../ws') : bad('pages connected', 'status: ' + await A.eval($text('status')) + ' / ' + await B.eval($text('status')));
  const userA = await A.eval($text('me')), userB = await B.eval($text('me'));
  /^anon-[0-9a-f]{8}$/.test(userA) && /^anon-[0-9a-f]{8}$/.test(userB) && userA !== userB
    ? ok(`anonymous ids ${userA}, ${userB}`) : bad('anonymous ids', userA + ' ' + userB);

  const both = `${$text('who')}.includes('${userA}') && ${$text('who')}.includes('${userB}') && ${$text('count')} === '(2)'`;
  (await until(A, both, 5000)) && (await until(B, both, 5000))
    ? ok('presence: each page lists both users') : bad('presence lists', await A.eval($text('who')) + ' | ' + await B.eval($text('who')));

  // typing: A types, B sees "<A> is typing..."
  await A.eval(`(() => { const t = document.getElementById('text'); t.value = 'hel'; t.dispatchEvent(new Event('input')); })()`);
  (await until(B, `${$text('typing')} === '${userA} is typing...'`, 5000))
    ? ok('typing indicator shown on the other page') : bad('typing indicator', await B.eval($text('typing')));
  const typingShot = shot.replace(/\.png$/, '_typing.png');
  fs.writeFileSync(typingShot, Buffer.from((await B.send('Page.captureScreenshot', { format: 'png' })).data, 'base64'));

  // A sends; B shows it with sender and time; A's own copy is confirmed (acked)
  await A.eval(`(() => { document.getElementById('text').value = 'hello from A'; document.getElementById('go').click(); })()`);
  const lastB = `(() => { const m = [...document.querySelectorAll('#log .msg')].pop(); return m ? m.querySelector('.from').textContent + '|' + m.querySelector('.text').textContent + '|' + m.querySelector('.time').textContent : ''; })()`;
  const got = await until(B, `${lastB}.startsWith('${userA}|hello from A|')`, 5000);
  const shown = await B.eval(lastB);
  got && /\|\d\d:\d\d$/.test(shown) ? ok('message shown on the other page: ' + shown) : bad('message on B', shown);
  (await until(A, `document.querySelectorAll('#log .msg.pending').length === 0 && ${$text('log')}.includes('hello from A')`, 5000))
    ? ok('sender sees its own message, acked') : bad('sender copy/ack', await A.eval($text('log')));
  (await until(B, `${$text('typing')} === ''`, 5000)) ? ok('typing indicator cleared after sending') : bad('typing cleared', await B.eval($text('typing')));

  // B answers
  await B.eval(`(() => { document.getElementById('text').value = 'hi A, B here'; document.getElementById('go').click(); })()`);
  (await until(A, `${$text('log')}.includes('hi A, B here')`, 5000)) ? ok('reply shown on the first page') : bad('reply on A', await A.eval($text('log')));

  // the page speaks through rtws.js (clients/js), served by chat_server at /rtws.js
  const js = await A.eval(`fetch('/rtws.js').then(async (r) => r.headers.get('content-type') + '|' + (await r.text()).length)`);
  const usesClient = await A.eval(`typeof chat === 'object' && chat.constructor.name === 'RtwsClient' && chat.state === 'open' && chat.channels.join() === 'room:lobby' && chat.unacked === 0`);
  /^text\/javascript/.test(js) && usesClient ? ok('the page uses rtws.js (served at /rtws.js: ' + js + ')') : bad('rtws.js on the page', js + ' ' + usesClient);

  // resume: A's connection drops (rtws.js: reconnect in 1.5 s); B talks
  // meanwhile; A reconnects with ?session= and since
  await A.eval(`chat.reconnect(1500)`);
  await until(A, `!${$text('status')}.startsWith('connected')`, 2000);
  await B.eval(`(() => { document.getElementById('text').value = 'said while A was away'; document.getElementById('go').click(); })()`);
  const resumed = await until(A, `${$text('status')} === 'connected (resumed)'`, 10000);
  resumed && (await A.eval($text('me'))) === userA ? ok('reconnected with the same session and user') : bad('session resume', await A.eval($text('status')));
  (await until(A, `${$text('log')}.includes('said while A was away')`, 5000))
    ? ok('message sent while offline replayed after the reconnect') : bad('replay after reconnect', await A.eval($text('log')));
  const dupes = await A.eval(`[...document.querySelectorAll('#log .msg .text')].filter((e) => e.textContent === 'hello from A').length`);
  dupes === 1 ? ok('no duplicates after the replay') : bad('duplicates after replay', dupes);

  // status page, fetched by the page from the same origin
  const st = await A.eval(`fetch('/ws/status').then((r) => r.json())`);
  st && st.status === 'ok' && st.active_connections === 2 && st.users_online === 2 && st.subscriptions['room:lobby'] === 2
    ? ok('status page: 2 connections, 2 users, room:lobby 2') : bad('status page', JSON.stringify(st));

  // permessage-deflate: Chromium offers it, chat_server (rtws, on by
  // default) accepts; every message above went compressed both ways
  const ext = await A.eval(`new Promise((r) => { const w = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
    w.onopen = () => { const e = w.extensions; w.close(); r(e); }; w.onerror = () => r('error'); setTimeout(() => r('timeout'), 3000); })`);
  /^permessage-deflate/.test(ext) ? ok('compression agreed with Chromium: ' + ext) : bad('permessage-deflate with Chromium', ext);

  // the screenshot, of the page that received messages
  await B.eval(`(() => { const t = document.getElementById('text'); t.value = ''; t.blur(); })()`);
  await sleep(300);
  const png = await B.send('Page.captureScreenshot', { format: 'png' });
  fs.writeFileSync(shot, Buffer.from(png.data, 'base64'));
  fs.statSync(shot).size > 5000 ? ok('screenshot saved to ' + shot) : bad('screenshot', 'too small');

  await b.send('Target.closeTarget', { targetId: A.targetId });
  await b.send('Target.closeTarget', { targetId: B.targetId });
  b.close();
}

main().catch((e) => bad('driver', e.message)).finally(() => {
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail ? 1 : 0);
});
