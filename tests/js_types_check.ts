// Compiled (not run) by tests/interop_js.sh with tsc --strict: clients/js/rtws.d.ts
// describes what a TypeScript user of rtws.js writes; an unknown event is an error.
import { RtwsClient, RtwsMessage, backoffBound, STATES } from '../clients/js/rtws.js';
const c = new RtwsClient('ws://x/ws', { backoffBaseMs: 10, token: () => 't' });
const off = c.on('message', (m: RtwsMessage) => { const s: number = m.seq; void s; });
off();
c.on('state', (e) => { const st: 'open' | 'closed' | string = e.state; void st; });
c.on('ack', (a) => a.duplicate);
c.subscribe('room:a', { since: 3 });
c.subscribe('room:a', (m) => m.data);
const id: string = c.publish('room:a', { text: 'x' }, { event: 'typing' });
c.ping().then((rtt: number) => rtt + 1);
const p: Map<string, string> = c.presence('room:a');
void id; void p; void backoffBound(2); void STATES;
// @ts-expect-error unknown event
c.on('nope', () => {});
