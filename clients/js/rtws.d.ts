// Types of rtws.js, the client of the rtws realtime protocol (docs/PROTOCOL.md).

export declare const VERSION: string;

/** The states of rtws_client / rtws_rt, by the same names. */
export type RtwsState = 'connecting' | 'open' | 'closing' | 'closed' | 'reconnecting' | 'failed';
export declare const STATES: readonly RtwsState[];

/** Anything shaped like the browser's WebSocket constructor (the ws package's on Node 20). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate?(): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface RtwsOptions {
  /** A WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor | null;
  /** Sent in an `auth` message after every welcome (a function is called each time). */
  token?: string | (() => string) | null;
  /** A session to resume on the first connection. */
  session?: string;
  /** Connect right away (default true). */
  autoConnect?: boolean;
  /** First reconnect delay is random in [0, base] (1000). */
  backoffBaseMs?: number;
  /** The bound grows by this per failed attempt (2). */
  backoffFactor?: number;
  /** Bound cap (60000). */
  backoffMaxMs?: number;
  /** Failed attempts in a row before 'failed' (0: unlimited). */
  maxAttempts?: number;
  /** A connection open this long resets the backoff (10000). */
  stableMs?: number;
  /** Reconnect after close 1008 or 4000-4999 too (false: 'failed'). */
  reconnectOnPolicy?: boolean;
  /** No welcome this long after an attempt started: retry (10000). */
  connectTimeoutMs?: number;
  /** A protocol ping this often (20000): latency and heartbeat. */
  pingIntervalMs?: number;
  /** A ping unanswered and nothing received this long: the link is dead (10000). */
  pongTimeoutMs?: number;
  /** Publishes waiting for their ack (1000); publish() throws RangeError beyond. */
  maxUnacked?: number;
  /** Pace outgoing messages to this rate per second (0: no pacing). */
  ratePerSec?: number;
  /** ... with this burst (20). */
  rateBurst?: number;
  /** Pause after `rate_limited` without retry_after_ms (1000). */
  retryAfterMs?: number;
  /** [0, 1): the jitter source (Math.random). */
  random?: () => number;
}

export interface StateEvent {
  state: RtwsState;
  previous: RtwsState;
  /** connecting, reconnecting: the attempt (0 for the first connection). */
  attempt?: number;
  /** reconnecting: the wait before the attempt, ms. */
  delay?: number;
  /** reconnecting, closed, failed: the close code (1006: lost without a close). */
  code?: number;
  reason?: string;
}
export interface WelcomeEvent { user: string; session: string; resumed: boolean; heartbeat: number; auth: 'required' | 'optional'; time: number; }
export interface AuthenticatedEvent { user: string; session: string; }
export interface PresenceEntry { user: string; status: string; }
export interface SubscribedEvent { channel: string; seq: number; id?: string; members: number; presence: PresenceEntry[] | null; }
export interface UnsubscribedEvent { channel: string; id?: string; }
export interface RtwsMessage<T = unknown> { channel: string; event: string; data: T; seq: number; from: string; ts: number; }
export interface ResetEvent { channel: string; seq: number; }
export interface AckEvent { id: string; seq: number; duplicate: boolean; channel?: string; }
export interface PresenceEvent { channel: string; user: string; status: string; }
export interface LatencyEvent { rtt: number; }
export interface ErrorEvent {
  code: string;
  message: string;
  id?: string;
  retryAfterMs?: number;
  /** The publish the client gave up on (refused for good), else null. */
  publish: { id: string; channel: string; message: unknown } | null;
}

export interface RtwsEvents {
  state: StateEvent;
  welcome: WelcomeEvent;
  authenticated: AuthenticatedEvent;
  subscribed: SubscribedEvent;
  unsubscribed: UnsubscribedEvent;
  message: RtwsMessage;
  reset: ResetEvent;
  ack: AckEvent;
  presence: PresenceEvent;
  latency: LatencyEvent;
  error: ErrorEvent;
  /** Every server message, as parsed. */
  raw: { type: string; [k: string]: unknown };
}

export interface RtwsStats { connects: number; reconnects: number; received: number; duplicates: number; resent: number; }

export declare class RtwsClient {
  constructor(url: string, options?: RtwsOptions);
  readonly url: string;
  readonly options: Required<RtwsOptions>;
  readonly state: RtwsState;
  readonly user: string;
  readonly session: string;
  readonly resumed: boolean;
  readonly heartbeat: number;
  /** Last round trip in ms (NaN before the first). */
  readonly rtt: number;
  readonly stats: RtwsStats;
  readonly channels: string[];
  /** Publishes not acked yet. */
  readonly unacked: number;

  on<K extends keyof RtwsEvents>(type: K, fn: (ev: RtwsEvents[K]) => void): () => void;
  once<K extends keyof RtwsEvents>(type: K, fn: (ev: RtwsEvents[K]) => void): () => void;
  off<K extends keyof RtwsEvents>(type: K, fn: (ev: RtwsEvents[K]) => void): this;

  connect(): void;
  close(code?: number, reason?: string): void;
  reconnect(delayMs?: number): void;
  ping(): Promise<number>;

  subscribe(channel: string, opts?: { since?: number }, handler?: (m: RtwsMessage) => void): void;
  subscribe(channel: string, handler: (m: RtwsMessage) => void): void;
  unsubscribe(channel: string): boolean;
  setPresence(channel: string, status: string): boolean;
  presence(channel: string): Map<string, string>;
  lastSeq(channel: string): number;
  publish(channel: string, data?: unknown, opts?: { event?: string; id?: string }): string;
}

export declare function backoffBound(attempt: number, base?: number, factor?: number, max?: number): number;
export declare function validChannel(name: string): boolean;
export default RtwsClient;
