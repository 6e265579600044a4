/**
 * What RedisStore needs from a Redis client, whatever its library: one small connection interface
 * (`RedisConnection`: a status, `call`, `callBuffer`) and, on Cluster, a view of the topology
 * (`ClusterTopology`: which master serves a slot, one connection per master). The adapters in
 * clients/ build this view for ioredis, node-redis and Valkey GLIDE; clients/index.ts picks one by
 * the client's shape. The store core (script-runner.ts, batch-dispatch.ts) talks to this view only.
 *
 * An ioredis `Cluster` and its node connections already have the connection's shape and are used
 * as they are; a standalone `Redis` gets a thin connection that sends the commands of one tick in
 * a few writes (one per 16 calls, a batch call at once), an auto-pipelining client one that
 * mends its `callBuffer` (see clients/ioredis.ts).
 *
 * Also here: the two gates every call passes before it is sent — ReadinessGate (not connected:
 * fail fast) and InFlightGate (connected but not answering: fail fast).
 */
import { StoreError } from '../../core/errors.js';

export type RedisArgument = string | Buffer | number;

/** Which library a client comes from (for diagnostics and tests). */
export type ClientKind = 'ioredis' | 'node-redis' | 'glide';

/**
 * One connection (or a cluster client, which routes each script call by its first key). Statuses
 * use ioredis's words: `'ready'` (commands are sent), `'wait'` (not started: ioredis `lazyConnect`,
 * a node-redis client not connected yet), `'connecting'` / `'connect'` (first attempt),
 * `'reconnecting'`, `'close'`, `'end'` (closed for good).
 */
export interface RedisConnection {
  readonly status: string;
  /** Sends one command; replies with strings. Error replies reject with Redis's own text as message. */
  call(command: string, args: RedisArgument[]): Promise<unknown>;
  /** Sends one command; replies with Buffers (binary-safe bulk strings). */
  callBuffer(command: string, args: RedisArgument[]): Promise<unknown>;
  /**
   * Writes now the commands this connection holds back to send them together (a standalone ioredis
   * client coalesces a tick's writes): called after a batch call, which the batcher already made
   * one call of many decisions, so that Redis starts on it while Node makes the next ones.
   */
  flushWrites?(): void;
  /** How we wait for a connection without the client's offline queue (`'ready'`, and `'close'` / `'end'` as failures). */
  once?(event: string, listener: () => void): unknown;
  removeListener?(event: string, listener: () => void): unknown;
  /** Starts a client that was created without connecting (ioredis `lazyConnect`). */
  connect?(): Promise<unknown>;
  /** `host:port` of the server, when the adapter knows it (else serverName reads ioredis `options`). */
  readonly name?: string;
}

/** A Cluster client's topology, as far as the store needs it. */
export interface ClusterTopology {
  /**
   * `host:port` of the master serving `slot` by the client's slot map (kept up to date by the
   * client from CLUSTER SLOTS and MOVED replies), or undefined when unknown.
   */
  masterOf(slot: number): string | undefined;
  /** The client's connections to its masters now, by `host:port` (read once per flush that needs them). */
  masterConnections(): ReadonlyMap<string, RedisConnection>;
  /** One connection per master (FUNCTION LOAD), discovering the masters first if the client knows none yet. */
  masters(): Promise<readonly RedisConnection[]>;
  /** The slot map turned out stale (a decision met a key its master no longer serves). */
  staleMap?(): void;
}

/** The client as the store core sees it. */
export interface StoreClient {
  readonly kind: ClientKind;
  /** Keyed calls go here (on Cluster, routed by their first key). */
  readonly connection: RedisConnection;
  /** Set on Cluster. */
  readonly cluster: ClusterTopology | undefined;
  /**
   * What the client prepends to declared keys (ioredis `keyPrefix`), so slots and cross-slot calls
   * (keys in ARGV) name the same keys; '' for none. `undefined`: a prefix the store cannot add
   * itself (a Buffer): decisions then go by slot only.
   */
  readonly keyPrefix: string | undefined;
  /**
   * Whether commands sent one after another, without waiting for replies, run on the server in
   * that order (one connection per server, written in order): ioredis and node-redis do. GLIDE
   * does not: its core dispatches each request on its own (200 concurrent `RPUSH`es of 0..199 to
   * one key land with up to ~70 inversions on Cluster, one on a standalone server). Without it,
   * the store holds a call while an earlier one on its keys is in flight or waiting
   * (key-ordered-calls.ts).
   */
  readonly keepsCommandOrder: boolean;
  /**
   * Whether the app closed the client (`quit()`, `disconnect()`) where its status does not say so:
   * an ioredis Cluster can stay `'close'` after that instead of reaching `'end'`. Absent: the
   * status `'end'` alone tells it.
   */
  readonly closedByApp?: (() => boolean) | undefined;
}

/** `host:port` of one connection, as a Cluster client's slot map names nodes; `default` if unknown. */
export function serverName(server: RedisConnection): string {
  if (server.name !== undefined) return server.name;
  const options = (server as { options?: { host?: string; port?: number } }).options;
  return options?.host !== undefined ? `${options.host}:${options.port ?? 6379}` : 'default';
}

/** The first key of a script call's arguments `[name | sha | source, numkeys, ...keys, ...argv]`. */
export function firstKeyOf(args: readonly RedisArgument[]): RedisArgument | undefined {
  return Number(args[1]) > 0 ? args[2] : undefined;
}

/** States of a client that has not finished its first connection yet (ioredis `Redis` and `Cluster`). */
const FIRST_CONNECT_STATES = new Set(['wait', 'connecting', 'connect']);

/**
 * Tells whether a command may be sent now. A client that is not connected fails at once, instead
 * of letting the client park the command in its offline queue until Redis comes back (pending
 * store calls stay bounded). The one exception is a client still on its FIRST connection attempt
 * (an app that serves requests right after creating its client): the call waits for that
 * connection (the caller's timeout budget bounds the wait) — by the client's `ready` event, not
 * its offline queue, so it holds whatever the client's offline-queue setting is. Once an attempt
 * failed ('reconnecting'), Redis is unreachable and calls fail fast even before the first success.
 */
export class ReadinessGate {
  private wasReady: boolean;
  /** The wait for the first connection, shared by every call made during it. */
  private firstConnection: Promise<void> | undefined;
  /** That wait failed: later attempts are the client's retries, which calls do not wait for. */
  private firstAttemptFailed = false;

  constructor(
    private readonly client: RedisConnection,
    private readonly closedByApp: (() => boolean) | undefined = undefined,
  ) {
    this.wasReady = client.status === 'ready';
  }

  /** Records that the client answered (e.g. `RedisStore#ready()`), so a later outage fails fast. */
  markReady(): void {
    this.wasReady = true;
  }

  /**
   * `undefined` when a command may be sent now; a promise that settles when it may (first
   * connection); throws a StoreError when it may not (Redis unreachable).
   */
  whenSendable(): Promise<void> | undefined {
    const status = this.client.status;
    if (status === 'ready') {
      this.wasReady = true;
      return undefined;
    }
    if (!this.wasReady && !this.firstAttemptFailed && FIRST_CONNECT_STATES.has(status)) {
      if (this.client.once === undefined) return undefined; // not an EventEmitter: let the client queue it
      this.firstConnection ??= this.waitFor(['close', 'end']).then(
        () => void (this.firstConnection = undefined),
        (err: unknown) => {
          this.firstConnection = undefined;
          this.firstAttemptFailed = true;
          throw err;
        },
      );
      return this.firstConnection;
    }
    // Closed for good (the app's quit() or disconnect(), or retries given up): only the app can
    // reopen it, so no retry of ratelock's (an idempotency complete, a give-back) can succeed.
    if (this.closed()) throw new StoreError(`Redis client is closed (status: ${status}); the call was not sent`, { notSent: true, lasting: true });
    throw new StoreError(`Redis client not ready (status: ${status}); the call was not sent`, { notSent: true });
  }

  /** Whether the client is closed for good: status `end`, or closed by the app (StoreClient.closedByApp). */
  closed(): boolean {
    return this.client.status === 'end' || this.closedByApp?.() === true;
  }

  /**
   * The failure of a call that was sent: `lasting` when the client is closed by now (the app
   * closed it with the call in flight: node-redis `destroy()` fails it with "Disconnects client",
   * ioredis with "Connection is closed."), so that nothing retries it; else `failure` as it is.
   */
  failureOf(failure: StoreError): StoreError {
    if (failure.lasting || !this.closed()) return failure;
    return new StoreError(`${failure.message} (the Redis client is closed)`, { cause: failure.cause ?? failure, notSent: failure.notSent, lasting: true });
  }

  /**
   * Resolves once the client is connected, however long that takes (`RedisStore#ready()`); rejects
   * only if the client is closed for good (`quit()`, `disconnect()`, retries given up).
   */
  connected(): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    if (this.closed()) return Promise.reject(new StoreError(`Redis client is closed (status: ${this.client.status})`, { lasting: true }));
    if (this.client.once === undefined) return Promise.resolve(); // not an EventEmitter: the first command will tell
    return this.waitFor(['end']);
  }

  /** Resolves on the client's `ready` event, rejects on the first of `failures`; starts a lazyConnect client. */
  private waitFor(failures: readonly string[]): Promise<void> {
    const client = this.client;
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        client.removeListener?.('ready', onReady);
        for (const event of failures) client.removeListener?.(event, onFailure);
      };
      const onReady = (): void => {
        cleanup();
        this.wasReady = true;
        resolve();
      };
      const onFailure = (): void => {
        cleanup();
        reject(new StoreError(`Redis client could not connect (status: ${client.status}); the call was not sent`, { notSent: true }));
      };
      client.once!('ready', onReady);
      for (const event of failures) client.once!(event, onFailure);
      if (client.status === 'wait') client.connect?.().catch(() => undefined);
    });
  }
}

/**
 * A connection counts as stalled when calls are outstanding on it and no reply at all has come
 * for this long (Redis answers a ratelock call in well under a millisecond; one call holds Redis
 * for ≤ ~1 ms by the batch bounds). A frozen server (SIGSTOP, a network black hole), `DEBUG
 * SLEEP`, a script stuck past `busy-reply-threshold` on the way in: all look like this. The
 * least wait: a store waits as long as the longest budget (`timeout`) of its guards (see
 * SilenceAllowance), so a guard that chose to wait for a slow Redis is not refused before.
 */
export const STALL_MS = 100;

/**
 * How long a store's connections may stay silent, calls outstanding, before they count as
 * stalled: STALL_MS, or the longest call budget a guard of the store has noted (core's
 * noteCallBudget), if longer. Shared by every gate of one store.
 */
export class SilenceAllowance {
  #ms = STALL_MS;

  get ms(): number {
    return this.#ms;
  }

  /** A guard's call budget: a call may wait this long, so silence this long is no stall yet. */
  allow(budgetMs: number): void {
    if (budgetMs > this.#ms) this.#ms = budgetMs;
  }
}

/**
 * Probes of a stalled connection: the first goes at once, each next one PROBE_INTERVAL_MS after
 * the previous, the interval doubling up to MAX_PROBE_INTERVAL_MS, and only once the previous probe
 * has settled or has waited MAX_PROBE_INTERVAL_MS itself (some clients hold a request across a
 * reconnect until their own timeout, GLIDE for one, so a probe sent to a dead connection would
 * otherwise hide a server that is back). So a stalled connection is handed at most one command a
 * second after its first seconds, and a server that is back is found within a second.
 */
export const PROBE_INTERVAL_MS = 250;
export const MAX_PROBE_INTERVAL_MS = 1_000;

/**
 * Whether a rejection is a reply of the server (`ERR …`, `WRONGTYPE …`, `NOSCRIPT …`, `MOVED …`,
 * `READONLY …`: an upper-case code, as the adapters pass them on) rather than the client giving up
 * (a closed connection, a client-side timeout, an offline client).
 */
export function isErrorReply(err: unknown): boolean {
  return err instanceof Error && /^[A-Z][A-Z_-]+(?: |$)/.test(err.message);
}

/**
 * The in-flight gate of one connection (issue 12 item 4, RELIABILITY A2): while Redis is frozen,
 * the client stays connected ("ready"), so without a gate every new call would be written and wait
 * in the client's queue long after its caller's budget gave up on it, and the queue would grow with
 * rate × outage. So: when calls are outstanding and no reply has come for STALL_MS (or the longest
 * budget of the store's guards: SilenceAllowance), confirmed one
 * event-loop turn later (so that a blocked event loop, whose replies are waiting in the socket,
 * never counts as a stalled Redis), the connection is stalled. Then new calls fail at once with a
 * StoreError, without being sent, except probes (see PROBE_INTERVAL_MS). The first reply of any
 * call reopens the gate.
 *
 * Bound on the commands a stalled connection is handed: the calls made within the allowed silence
 * (plus one event-loop turn) of the last reply, plus the probes: at 0, 0.25, 0.75 s, then one a second.
 *
 * O(1) per call: a counter, the time of the last progress and two flags; no timer, no promise per
 * call (one setImmediate per suspicion of a stall).
 */
export class InFlightGate {
  #outstanding = 0;
  /** performance.now() of the last reply, or of the send that found nothing outstanding. */
  #lastProgress = 0;
  #stalled = false;
  #confirming = false;
  /** The latest probe: its id (0 = none in flight) and when it was sent. */
  #probe = 0;
  #probeSentAt = 0;
  #probes = 0;
  #nextProbeAt = 0;
  #probeInterval = PROBE_INTERVAL_MS;
  /** The stall is confirmed only if no progress happened since it was suspected. */
  readonly #confirm = (): void => {
    this.#confirming = false;
    if (this.#silent(performance.now())) this.#stalled = true;
  };

  constructor(
    private readonly name: string,
    private readonly allowance: SilenceAllowance,
  ) {}

  /**
   * Whether the connection is stalled, for a call that is not entering (one waiting its turn):
   * like a call entering, asking starts the confirmation when calls have gone unanswered for
   * STALL_MS, so that calls that all wait still find the stall.
   */
  checkStalled(): boolean {
    if (!this.#stalled) this.#suspect(performance.now());
    return this.#stalled;
  }

  /** The error of a call failed at once, not sent, because the connection is stalled. */
  notSent(): StoreError {
    const now = performance.now();
    return new StoreError(
      `Redis (${this.name}) has not answered for ${Math.round(now - this.#lastProgress)} ms with ${this.#outstanding} calls outstanding; the call was not sent`,
      { notSent: true },
    );
  }

  /** Calls are outstanding and no reply has come for the allowed silence (STALL_MS at least). */
  #silent(now: number): boolean {
    return this.#outstanding > 0 && now - this.#lastProgress > this.allowance.ms;
  }

  /** Looks stalled: confirmed one event-loop turn later unless a reply comes (see the class comment). */
  #suspect(now: number): void {
    if (!this.#confirming && this.#silent(now)) {
      this.#confirming = true;
      setImmediate(this.#confirm);
    }
  }

  /** The previous probe has settled (or waited MAX_PROBE_INTERVAL_MS) and the next one's time has come. */
  #probeDue(now: number): boolean {
    return (this.#probe === 0 || now - this.#probeSentAt >= MAX_PROBE_INTERVAL_MS) && now >= this.#nextProbeAt;
  }

  /** Calls sent and not yet settled. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /**
   * Called right before a call is sent: its probe id if it goes as the stalled connection's probe,
   * else 0. Pass the id to `leave`.
   * @throws StoreError when the connection is stalled and no probe is due (the call is not sent).
   */
  enter(): number {
    const now = performance.now();
    if (this.#stalled) {
      if (!this.#probeDue(now)) throw this.notSent();
      this.#probe = ++this.#probes;
      this.#probeSentAt = now;
      this.#nextProbeAt = now + this.#probeInterval;
      this.#probeInterval = Math.min(this.#probeInterval * 2, MAX_PROBE_INTERVAL_MS);
      this.#outstanding++;
      return this.#probe;
    }
    if (this.#outstanding === 0) this.#lastProgress = now;
    else this.#suspect(now);
    this.#outstanding++;
    return 0;
  }

  /** Called when a call settled: `replied` if the server answered it (a result or an error reply); `probe` as `enter` returned it. */
  leave(replied: boolean, probe: number): void {
    this.#outstanding--;
    if (probe !== 0 && probe === this.#probe) this.#probe = 0;
    if (replied) {
      this.#lastProgress = performance.now();
      this.#stalled = false;
      this.#probeInterval = PROBE_INTERVAL_MS;
      this.#nextProbeAt = 0;
    }
  }
}

/** The message of a Redis error reply (or any thrown value), for prefix matching. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The StoreError of a script call Redis answered with the error `message` (`cause`: the client's
 * error). `lasting` when the message says a key holds another kind of value than the script
 * expects (WRONGTYPE, possibly after a prefix of the script's own): no retry changes that.
 */
export function scriptFailure(operation: string, message: string, cause: unknown): StoreError {
  return new StoreError(`Redis script ${operation} failed: ${message}`, { cause, lasting: message.includes('WRONGTYPE') });
}
