/**
 * Express (4 and 5) lock-guard: `withLock(options)` as middleware and `withLock(options, handler)`
 * wrapping one handler. One store call decides; the lease is auto-extended (every ttl/3, up to
 * `maxHold`) while the request is handled and ended as follows.
 *
 * When the lease ends:
 * - Decorator form: once the handler's returned promise has settled AND the response has ended
 *   (`finish`, or `close` without it); at once if the handler throws (then `next(err)`).
 * - Middleware form: the only sign that the rest of the chain is done is the response ending.
 *   On `finish` the lease is released. On `close` without `finish` (client gone, socket
 *   destroyed) the handler may still be running, and a retry must not run beside it: the lease is
 *   NOT released; extension stops and the lease expires within `ttl` (its signal then aborts).
 * - Replay mode: when the handler calls `res.end()`, the record is completed (or aborted, for a
 *   status that is not stored) BEFORE the last chunk goes out, so a client that got the response
 *   and retries always gets the replay.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ConfigError } from '../../core/errors.js';
import { describe } from '../../core/duration.js';
import type { IdempotencyLease } from '../../core/idempotency.js';
import type { LockLease } from '../../core/lock-guard.js';
import type { StoredResponse } from '../../core/store.js';
import { captureServerResponse } from '../http/idempotency-capture.js';
import { REPLAYED_HEADER } from '../http/idempotency-headers.js';
import { openGate, type GateOutcome } from '../http/lock-gate.js';
import { finishRecord, releaseLease } from '../http/lock-lease-end.js';
import { resolveWithLockOptions, type BusyInfo, type LockInfo, type WithLockConfig, type WithLockOptionsBase } from '../http/lock-options.js';
import type { LockAnswer } from '../http/lock-responses.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The lease `withLock` holds for this request: `{ key, token, fence, signal }`. */
      lock?: LockInfo;
    }
  }
}

export type { BusyInfo, LockInfo } from '../http/lock-options.js';

/** Called instead of the default 409 when the key is busy; may send its own response. */
export type ExpressOnBusy = (req: Request, res: Response, info: BusyInfo) => unknown;

/** `withLock()` options for Express; see lock-options.ts for each option. */
export type ExpressWithLockOptions = WithLockOptionsBase<Request, ExpressOnBusy>;

/** A handler run under the lock by the decorator form. */
export type ExpressLockedHandler = (req: Request, res: Response, next: NextFunction) => unknown;

type Config = WithLockConfig<Request, ExpressOnBusy>;

/**
 * @example
 * app.post('/orders', withLock({ store, key: (req) => `cart:${req.body.cartId}`, ttl: '30s' }), createOrder);
 * app.post('/payments', express.json(), withLock({ store, replay: { ttl: '24h' } }), pay);
 * app.post('/refunds/:id', withLock({ store, key: (req) => req.params.id }, refundHandler));
 * @throws ConfigError at construction, naming the bad option.
 */
export function withLock(options?: ExpressWithLockOptions): RequestHandler;
export function withLock(options: ExpressWithLockOptions | undefined, handler: ExpressLockedHandler): RequestHandler;
export function withLock(options: ExpressWithLockOptions = {}, handler?: ExpressLockedHandler): RequestHandler {
  const config = resolveWithLockOptions<Request, ExpressOnBusy>(options, 'withLock');
  if (handler !== undefined && typeof handler !== 'function') {
    throw new ConfigError(`withLock(options, handler): handler must be a function (req, res, next); got ${describe(handler)}`);
  }
  return async function ratelockWithLock(req: Request, res: Response, next: NextFunction): Promise<void> {
    let outcome: GateOutcome;
    try {
      outcome = await openGate(config, { subject: req, method: req.method, url: req.originalUrl ?? req.url, body: req.body, node: req });
      if (outcome.kind === 'busy' && (await answeredByOnBusy(config, req, res, outcome.info))) return;
    } catch (err) {
      next(err);
      return;
    }
    switch (outcome.kind) {
      case 'answer':
      case 'busy':
        sendAnswer(res, outcome.answer);
        return;
      case 'replay':
        sendReplay(res, outcome.response);
        return;
      case 'unguarded':
        if (handler === undefined) next();
        else run(handler, req, res, next).catch(next);
        return;
      case 'lock':
      case 'record':
        req.lock = { key: outcome.key, token: outcome.lease.token, fence: outcome.lease.fence, signal: outcome.lease.signal };
        if (outcome.kind === 'lock') holdLock(config, outcome.lease, req, res, next, handler);
        else holdRecord(config, outcome.lease, req, res, next, handler);
    }
  };
}

function holdLock(config: Config, lease: LockLease, req: Request, res: Response, next: NextFunction, handler: ExpressLockedHandler | undefined): void {
  const extension = lease.autoExtend();
  if (handler === undefined) {
    onResponseDone(res, (finished) => {
      if (finished) void releaseLease(lease, config.logger);
      else extension.stop();
    });
    next();
    return;
  }
  let handlerSettled = false;
  let responseDone = false;
  const releaseWhenBothDone = (): void => {
    if (handlerSettled && responseDone) void releaseLease(lease, config.logger);
  };
  onResponseDone(res, () => {
    responseDone = true;
    releaseWhenBothDone();
  });
  run(handler, req, res, next).then(
    () => {
      handlerSettled = true;
      releaseWhenBothDone();
    },
    (err: unknown) => {
      handlerSettled = true;
      void releaseLease(lease, config.logger);
      next(err);
    },
  );
}

function holdRecord(config: Config, lease: IdempotencyLease, req: Request, res: Response, next: NextFunction, handler: ExpressLockedHandler | undefined): void {
  const replay = config.replay!;
  const extension = lease.autoExtend();
  captureServerResponse(res, replay.maxBodyBytes, (captured) => finishRecord(lease, replay, config.logger, captured));
  if (handler === undefined) {
    onResponseDone(res, (finished) => {
      // Closed before res.end(): the handler may still run (and may still end the response,
      // which then completes the record). Stop extending; the record expires within ttl.
      if (!finished && !res.writableEnded) extension.stop();
    });
    next();
    return;
  }
  let handlerSettled = false;
  let responseDone = false;
  // The handler is done and the response ended without res.end() (client gone): nothing to store.
  const abortWhenBothDone = (): void => {
    if (handlerSettled && responseDone) void finishRecord(lease, replay, config.logger, undefined);
  };
  onResponseDone(res, () => {
    responseDone = true;
    abortWhenBothDone();
  });
  run(handler, req, res, next).then(
    () => {
      handlerSettled = true;
      abortWhenBothDone();
    },
    (err: unknown) => {
      handlerSettled = true;
      void finishRecord(lease, replay, config.logger, undefined);
      next(err);
    },
  );
}

/** Calls `done(finished)` once: on `finish` (true), or on `close` without `finish` (false). */
function onResponseDone(res: Response, done: (finished: boolean) => void): void {
  let called = false;
  const once = (finished: boolean): void => {
    if (called) return;
    called = true;
    done(finished);
  };
  res.once('finish', () => once(true));
  res.once('close', () => once(res.writableFinished));
}

/** The handler's outcome as a promise (a synchronous throw becomes a rejection). */
function run(handler: ExpressLockedHandler, req: Request, res: Response, next: NextFunction): Promise<unknown> {
  try {
    return Promise.resolve(handler(req, res, next));
  } catch (err) {
    return Promise.reject(err);
  }
}

async function answeredByOnBusy(config: Config, req: Request, res: Response, info: BusyInfo): Promise<boolean> {
  if (config.onBusy === undefined) return false;
  await config.onBusy(req, res, info);
  return res.headersSent || res.writableEnded;
}

function sendAnswer(res: Response, answer: LockAnswer): void {
  res.statusCode = answer.status;
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.end(answer.body);
}

function sendReplay(res: Response, response: StoredResponse & { readonly body: Buffer }): void {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value as string | string[]);
  res.setHeader(REPLAYED_HEADER, 'true');
  res.end(response.body);
}
