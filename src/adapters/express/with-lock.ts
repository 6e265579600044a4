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
 * - A failure after acquisition, before the handler runs (setting up `req.lock`, extension or
 *   capture): at once, then `next(err)`. Every error goes to `next`, so no request hangs and no
 *   rejection escapes (Express 4 ignores the promise a middleware returns).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ConfigError, formatValue, lockInfo, type BusyInfo, type HeldLease, type LockInfo } from '../../core/index.js';
import { lockAnswer } from '../http/answers.js';
import { captureServerResponse } from '../http/idempotency-capture.js';
import { clientGoneSignal } from '../http/client-gone.js';
import { readLockRequest, resolveWithLock, type HttpLock, type RequestAccess, type WithLockOptionsBase } from '../http/lock-options.js';
import { finishRecord } from '../http/replay-record.js';
import { sendAnswer } from './send-answer.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The lease `withLock` holds for this request: `{ key, token, fence, signal }`. */
      lock?: LockInfo | undefined;
    }
  }
}

export type { BusyInfo, LockInfo } from '../../core/index.js';

/** Called instead of the default 409 when the key is busy; may send its own response. */
export type ExpressOnBusy = (req: Request, res: Response, info: BusyInfo) => unknown;

/** `withLock()` options for Express; see lock-options.ts for each option. */
export type ExpressWithLockOptions = WithLockOptionsBase<Request, ExpressOnBusy>;

/** A handler run under the lock by the decorator form. */
export type ExpressLockedHandler = (req: Request, res: Response, next: NextFunction) => unknown;

type Config = HttpLock<Request, ExpressOnBusy>;

const EXPRESS_REQUEST: RequestAccess<Request> = {
  node: (req) => req,
  method: (req) => req.method,
  url: (req) => req.originalUrl ?? req.url,
  body: (req) => req.body as unknown,
};

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
  const config = resolveWithLock<Request, ExpressOnBusy>(options, 'withLock', EXPRESS_REQUEST);
  if (handler !== undefined && typeof handler !== 'function') {
    throw new ConfigError(`withLock(options, handler): handler must be a function (req, res, next); got ${formatValue(handler)}`);
  }
  return async function ratelockWithLock(req: Request, res: Response, next: NextFunction): Promise<void> {
    let hold: LeaseHold | undefined;
    try {
      const outcome = await config.guard.open(req, await readLockRequest(config, req, () => clientGoneSignal(res)));
      if (outcome.kind === 'held') hold = holdLease(config, outcome.held, req, res);
      else if (outcome.kind === 'store-failed' && outcome.mode === 'open') hold = undefined; // run unguarded
      else if (outcome.kind === 'client-gone') return; // its connection is closed: nothing to answer
      else {
        if (outcome.kind !== 'busy' || !(await answeredByOnBusy(config, req, res, outcome.info))) sendAnswer(res, lockAnswer(outcome));
        return;
      }
    } catch (err) {
      // Nothing downstream has run yet, and any lease taken is already ended: Express answers.
      next(err);
      return;
    }
    // Downstream runs outside the try: its errors reach Express once, through its own paths.
    if (handler === undefined) {
      if (hold !== undefined) onResponseDone(res, hold.responseDone);
      next();
    } else if (hold === undefined) {
      run(handler, req, res, next).catch(next);
    } else {
      runHolding(hold, handler, req, res, next);
    }
  };
}

/** How one request's lease ends, set up by `holdLease`. */
interface LeaseHold {
  /** Ends the lease now: releases the lock, or aborts a record not completed by then. Never rejects; repeats do nothing. */
  end(): Promise<void>;
  /** Middleware form, when the response is done: `finished` false means closed before `finish`. */
  responseDone(finished: boolean): void;
}

/**
 * Starts holding the lease for this request: `req.lock`, auto-extension and, in replay mode, the
 * response capture. If any of it throws, the lease is ended at once (never left held until ttl or
 * extended until maxHold) and the error rethrown, to go to `next(err)`.
 */
function holdLease(config: Config, held: HeldLease, req: Request, res: Response): LeaseHold {
  try {
    req.lock = lockInfo(held);
    const extension = held.lease.autoExtend();
    const end = (): Promise<void> => config.guard.end(held);
    if (held.kind === 'lock') {
      // Finished: the chain is done with the lock. Closed without finish: the handler may still
      // run and a retry must not run beside it, so stop extending and let the lease expire.
      return { end, responseDone: (finished) => (finished ? void end() : extension.stop()) };
    }
    const { lease } = held;
    const replay = config.replay!;
    captureServerResponse(res, replay.maxBodyBytes, (captured) => finishRecord(lease, replay, config.logger, captured));
    return {
      end,
      // res.end() completes the record (see the capture). Closed before it: the handler may still
      // run and end the response (which then completes the record); stop extending meanwhile.
      responseDone: (finished) => {
        if (!finished && !res.writableEnded) extension.stop();
      },
    };
  } catch (err) {
    void config.guard.end(held);
    throw err;
  }
}

/**
 * Decorator form: ends the lease once the handler's promise has settled AND the response is done
 * (a record not completed by then is aborted); at once if the handler throws, then `next(err)`.
 */
function runHolding(hold: LeaseHold, handler: ExpressLockedHandler, req: Request, res: Response, next: NextFunction): void {
  let handlerSettled = false;
  let responseDone = false;
  const endWhenBothDone = (): void => {
    if (handlerSettled && responseDone) void hold.end();
  };
  onResponseDone(res, () => {
    responseDone = true;
    endWhenBothDone();
  });
  run(handler, req, res, next).then(
    () => {
      handlerSettled = true;
      endWhenBothDone();
    },
    (err: unknown) => {
      handlerSettled = true;
      void hold.end();
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

/** Runs `onBusy`; true when it answered (sent headers or ended the response), so the default 409 is skipped. */
async function answeredByOnBusy(config: Config, req: Request, res: Response, info: BusyInfo): Promise<boolean> {
  if (config.onBusy === undefined) return false;
  await config.onBusy(req, res, info);
  return res.headersSent || res.writableEnded;
}

