/**
 * Hono 4 lock-guard: `withLock(options)` as middleware and `withLock(options, handler)` wrapping
 * one handler `(c, next)`. The lease is exposed as `c.get('lock')` and auto-extended (every
 * ttl/3, up to `maxHold`) while `await next()` (or the handler) runs, and ended when it settles —
 * also when the client has gone meanwhile, since Hono tells us exactly when the downstream work
 * is over. A handler that threw (Hono's `onError` answered it, `c.error` is set) ends it too.
 *
 * Replay mode reads the request body to fingerprint it (through Hono's body cache, so the handler
 * can still call `c.req.json()`), and stores the response the handler produced: its status,
 * headers, and body captured as it streams out; the record is completed before the stream
 * closes. A thrown error aborts the record so a retry runs; if the body stream fails or the client
 * leaves mid-stream, the record is aborted too.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import { ConfigError, formatValue, lockInfo, type BusyInfo, type HeldLease, type IdempotencyLease, type LockInfo } from '../../core/index.js';
import { lockAnswer } from '../http/answers.js';
import { readLockRequest, resolveWithLock, type HttpLock, type ReplayConfig, type RequestAccess, type WithLockOptionsBase } from '../http/lock-options.js';
import { finishRecord } from '../http/replay-record.js';
import { captureWebStream } from '../http/web-capture.js';
import { answerResponse } from './answer.js';
import { headerLinesOf, markHonoRequest, requestTarget } from './request-view.js';

export type { BusyInfo, LockInfo } from '../../core/index.js';

/** The Variables withLock sets: `c.get('lock')`. */
export type LockVariables = {
  /** The lease of `withLock` while the handler runs: key, token, fence and an abort signal. */
  lock?: LockInfo | undefined;
};

/** The Env of a withLock middleware, for apps that type their variables: `new Hono<LockEnv>()`. */
export type LockEnv = { Variables: LockVariables };

/** Called instead of the default 409 when the key is busy; answers by returning a Response. */
export type HonoOnBusy = (c: Context, info: BusyInfo) => Response | void | undefined | Promise<Response | void | undefined>;

/** `withLock()` options for Hono; callbacks receive the Context `c`. */
export type HonoWithLockOptions = WithLockOptionsBase<Context, HonoOnBusy>;

/** A handler run under the lock by the decorator form. */
export type HonoLockedHandler = (c: Context<LockEnv>, next: Next) => Response | void | undefined | Promise<Response | void | undefined>;

type Config = HttpLock<Context, HonoOnBusy>;

/** The parsed-or-raw body the default fingerprint covers, read before the guard opens (replay mode). */
const BODY = Symbol('ratelock.fingerprint-body');
type WithBody = Context & { [BODY]?: unknown };

const HONO_REQUEST: RequestAccess<Context> = {
  node: headerLinesOf,
  method: (c) => c.req.method,
  url: requestTarget,
  body: (c) => (c as WithBody)[BODY],
};

const JSON_MEDIA_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/**
 * Reads the request body for the default fingerprint, through Hono's body cache: a JSON body as
 * parsed JSON (so key order does not matter), any other body as its bytes; no body: undefined.
 */
async function readFingerprintBody(c: Context): Promise<void> {
  if (c.req.raw.body === null) return;
  const bytes = Buffer.from(await c.req.arrayBuffer());
  let body: unknown = bytes.length === 0 ? undefined : bytes;
  if (body !== undefined && JSON_MEDIA_TYPE.test(c.req.header('content-type') ?? '')) {
    try {
      body = JSON.parse(bytes.toString('utf8')) as unknown;
    } catch {
      // Not JSON after all: fingerprinted byte for byte.
    }
  }
  (c as WithBody)[BODY] = body;
}

/**
 * @example
 * app.post('/orders', withLock({ store, key: async (c) => `cart:${(await c.req.json()).cartId}` }), createOrder);
 * app.post('/payments', withLock({ store, replay: { ttl: '24h' } }), pay);
 * app.post('/refunds/:id', withLock({ store, key: (c) => c.req.param('id') }, refund));
 * @throws ConfigError at construction, naming the bad option.
 */
export function withLock(options?: HonoWithLockOptions): MiddlewareHandler<LockEnv>;
export function withLock(options: HonoWithLockOptions | undefined, handler: HonoLockedHandler): MiddlewareHandler<LockEnv>;
export function withLock(options: HonoWithLockOptions = {}, handler?: HonoLockedHandler): MiddlewareHandler<LockEnv> {
  const config = resolveWithLock<Context, HonoOnBusy>(options, 'withLock', HONO_REQUEST);
  if (handler !== undefined && typeof handler !== 'function') {
    throw new ConfigError(`withLock(options, handler): handler must be a function (c, next); got ${formatValue(handler)}`);
  }
  /** The downstream work: the rest of the chain, or the wrapped handler; its Response (if any) is what the client gets. */
  const run = async (c: Context<LockEnv>, next: Next): Promise<Response | undefined> => {
    if (handler === undefined) {
      await next();
      return undefined;
    }
    return (await handler(c, next)) ?? undefined;
  };

  return async function ratelockWithLock(c: Context<LockEnv>, next: Next): Promise<Response | void> {
    markHonoRequest(c);
    if (config.replay !== undefined) await readFingerprintBody(c);
    // The Request's signal aborts when the client leaves (@hono/node-server; other runtimes alike).
    const outcome = await config.guard.open(c, await readLockRequest(config, c, () => c.req.raw.signal));
    if (outcome.kind === 'store-failed' && outcome.mode === 'open') return run(c, next); // unguarded
    if (outcome.kind === 'client-gone') return new Response(null, { status: 499 }); // nobody reads it
    if (outcome.kind !== 'held') {
      if (outcome.kind === 'busy' && config.onBusy !== undefined) {
        const own = await config.onBusy(c, outcome.info);
        if (own instanceof Response) return own;
      }
      return answerResponse(c, lockAnswer(outcome));
    }
    const { held } = outcome;
    let response: Response | undefined;
    try {
      c.set('lock', lockInfo(held));
      held.lease.autoExtend();
      response = await run(c, next);
    } catch (err) {
      // The handler (decorator form) or the set-up threw: never leave the lock held or the record in flight.
      await config.guard.end(held);
      throw err;
    }
    // Downstream threw and Hono's onError answered (middleware form): as a throw.
    if (c.error !== undefined || held.kind === 'lock') {
      await config.guard.end(held);
      return response;
    }
    const captured = await storeResponse(c, response ?? c.res, held, config.replay!, config);
    if (response !== undefined) return captured;
    c.res = captured;
    return undefined;
  };
}

/**
 * The response the client gets, with its body captured as it streams out: the record is
 * completed with status, headers and body once the body ends, aborted if the stream fails or is
 * cancelled. A response without a body (or to HEAD, whose body Hono drops) is stored at once.
 */
async function storeResponse(
  c: Context,
  response: Response,
  held: Extract<HeldLease, { kind: 'record' }>,
  replay: ReplayConfig<Context>,
  config: Config,
): Promise<Response> {
  const lease: IdempotencyLease = held.lease;
  const status = response.status;
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => void (headers[name] = value));
  if (response.body === null || c.req.method === 'HEAD') {
    await finishRecord(lease, replay, config.logger, { status, headers, body: Buffer.alloc(0) });
    return response;
  }
  const body = captureWebStream(
    response.body,
    replay.maxBodyBytes,
    (captured) => finishRecord(lease, replay, config.logger, { status, headers, body: captured }),
    () => void finishRecord(lease, replay, config.logger, undefined),
  );
  return new Response(body, { status, statusText: response.statusText, headers: response.headers });
}
