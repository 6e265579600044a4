/**
 * Fastify 5 lock-guard: `withLock(options)` as a route `preHandler` hook (the conventional Fastify
 * way), and `withLock(options, handler)` wrapping one route handler. One store call decides; the
 * lease is auto-extended (every ttl/3, up to `maxHold`) while the request is handled and exposed
 * as `request.lock`. Refusals (409, 400, 422, 503) go through `reply`; replays are written as
 * stored, past the onSend hooks that shaped them the first time (see sendReplay).
 *
 * When the lease ends: when the handler's work is over, as the response shows it (`onResponseOutcome`):
 * the app ended the response (the handler's reply, or Fastify's error handler's answer to a throw),
 * or its headers were out when the connection closed. A client that leaves while the handler runs
 * does not end it early: the lease is held (and extended) until the app ends the response, so a
 * retry never runs beside a handler that still works; Fastify ends it once the handler settles,
 * and one that never does is bounded by `maxHold`. The decorator form also waits for the
 * handler's promise, and ends the lease at once if it throws.
 *
 * Replay mode stores what the app writes to the Node response (status, headers, body as sent,
 * streams included), captured below Fastify's serializers and hooks, and completes the record
 * BEFORE the last chunk goes out, so a client that got the response and retries gets the replay.
 * A status that is not stored (5xx unless `storeServerErrors`, 429, 503) aborts the record, as
 * does a throw in the decorator form, so the retry runs again.
 */
import type { ServerResponse } from 'node:http';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
  RouteGenericInterface,
  RouteHandlerMethod,
  preHandlerAsyncHookHandler,
} from 'fastify';
import { ConfigError, formatValue, lockInfo, type BusyInfo, type HeldLease, type LockInfo, type LockOutcome } from '../../core/index.js';
import { lockAnswer } from '../http/answers.js';
import { captureServerResponse } from '../http/idempotency-capture.js';
import { clientGoneSignal } from '../http/client-gone.js';
import { readLockRequest, resolveWithLock, type HttpLock, type RequestAccess, type WithLockOptionsBase } from '../http/lock-options.js';
import { finishRecord } from '../http/replay-record.js';
import { onResponseOutcome } from '../http/response-outcome.js';
import { sendAnswer, sendReplay } from './send-answer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The lease `withLock` holds for this request: `{ key, token, fence, signal }`. */
    lock?: LockInfo | undefined;
  }
}

export type { BusyInfo, LockInfo } from '../../core/index.js';

/** Called instead of the default 409 when the key is busy; may send its own response with `reply.send()`. */
export type FastifyOnBusy<Request = FastifyRequest> = (request: Request, reply: FastifyReply, info: BusyInfo) => unknown;

/** `withLock()` options for Fastify; callbacks receive the route's `request` (typed by its generic). */
export type FastifyWithLockOptions<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> = WithLockOptionsBase<
  FastifyRequest<RouteGeneric>,
  FastifyOnBusy<FastifyRequest<RouteGeneric>>
>;

/** A route handler run under the lock by the decorator form; its return value is sent, as Fastify does. */
export type FastifyLockedHandler<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> = (
  this: FastifyInstance,
  request: FastifyRequest<RouteGeneric>,
  reply: FastifyReply<RouteGeneric>,
) => unknown;

type Config = HttpLock<FastifyRequest, FastifyOnBusy>;

/** The preHandler hook withLock returns, typed for the route it guards. */
export type FastifyLockHook<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> = preHandlerAsyncHookHandler<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  RouteGeneric
>;

const FASTIFY_REQUEST: RequestAccess<FastifyRequest> = {
  node: (request) => request.raw,
  method: (request) => request.method,
  url: (request) => request.url,
  body: (request) => request.body,
};

/**
 * @example
 * fastify.post<{ Body: { cartId: string } }>('/orders', { preHandler: withLock({ store, key: (request) => `cart:${request.body.cartId}` }) }, createOrder);
 * fastify.post('/payments', { preHandler: withLock({ store, replay: { ttl: '24h' } }) }, pay);
 * fastify.post('/refunds/:id', withLock({ store, key: (request) => (request.params as { id: string }).id }, refund));
 * @throws ConfigError at construction, naming the bad option.
 */
export function withLock<RouteGeneric extends RouteGenericInterface = RouteGenericInterface>(options?: FastifyWithLockOptions<RouteGeneric>): FastifyLockHook<RouteGeneric>;
export function withLock<RouteGeneric extends RouteGenericInterface = RouteGenericInterface>(
  options: FastifyWithLockOptions<RouteGeneric> | undefined,
  handler: FastifyLockedHandler<RouteGeneric>,
): RouteHandlerMethod<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, RouteGeneric>;
export function withLock(options: FastifyWithLockOptions = {}, handler?: FastifyLockedHandler): unknown {
  const config = resolveWithLock<FastifyRequest, FastifyOnBusy>(options, 'withLock', FASTIFY_REQUEST);
  if (handler === undefined) return lockHook(config);
  if (typeof handler !== 'function') {
    throw new ConfigError(`withLock(options, handler): handler must be a function (request, reply); got ${formatValue(handler)}`);
  }
  return lockedHandler(config, handler);
}

/** The preHandler hook: resolves to `reply` when it answered (the handler then does not run), else `undefined`. */
function lockHook(config: Config) {
  return async function ratelockWithLock(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const outcome = await config.guard.open(request, await readLockRequest(config, request, () => clientGoneSignal(reply.raw)));
    if (outcome.kind === 'held') {
      const hold = holdLease(config, outcome.held, request, reply);
      void hold.responseDone.then(hold.end);
      return undefined;
    }
    if (outcome.kind === 'store-failed' && outcome.mode === 'open') return undefined; // run unguarded
    if (outcome.kind !== 'busy' || !(await answeredByOnBusy(config, request, reply, outcome.info))) answerOutcome(reply, outcome);
    return reply;
  };
}

/**
 * Answers an outcome that does not run the handler: a replay as stored (sendReplay), the rest
 * through `reply`; a client that left gets nothing (the reply is hijacked so Fastify sends nothing either).
 */
function answerOutcome(reply: FastifyReply, outcome: Exclude<LockOutcome, { kind: 'held' }>): void {
  if (outcome.kind === 'client-gone') reply.hijack();
  else if (outcome.kind === 'replay' && outcome.response.body !== null) sendReplay(reply, lockAnswer(outcome));
  else sendAnswer(reply, lockAnswer(outcome));
}

/** The decorator form: a route handler that runs `handler` holding the lease. */
function lockedHandler(config: Config, handler: FastifyLockedHandler) {
  return async function ratelockLocked(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const outcome = await config.guard.open(request, await readLockRequest(config, request, () => clientGoneSignal(reply.raw)));
    if (outcome.kind === 'store-failed' && outcome.mode === 'open') return handler.call(this, request, reply); // unguarded
    if (outcome.kind !== 'held') {
      if (outcome.kind !== 'busy' || !(await answeredByOnBusy(config, request, reply, outcome.info))) answerOutcome(reply, outcome);
      return reply;
    }
    const hold = holdLease(config, outcome.held, request, reply);
    let result: unknown;
    try {
      result = await handler.call(this, request, reply);
    } catch (err) {
      // Ended before Fastify's error handler answers: a record is aborted, so the retry runs again.
      await hold.end();
      throw err;
    }
    void hold.responseDone.then(hold.end);
    return result;
  };
}

/** How one request's lease ends, set up by `holdLease`. */
interface LeaseHold {
  /** Ends the lease now: releases the lock, or aborts a record not completed by then. Never rejects; repeats do nothing. */
  end(): Promise<void>;
  /** Resolves when the app has ended the response (also after the client left); never rejects. */
  readonly responseDone: Promise<void>;
}

/**
 * Starts holding the lease for this request: `request.lock`, auto-extension and, in replay mode,
 * the response capture. If any of it throws, the lease is ended at once and the error rethrown,
 * to take Fastify's error path.
 */
function holdLease(config: Config, held: HeldLease, request: FastifyRequest, reply: FastifyReply): LeaseHold {
  try {
    request.lock = lockInfo(held);
    held.lease.autoExtend();
    if (held.kind === 'record') {
      const { lease } = held;
      const replay = config.replay!;
      captureServerResponse(reply.raw, replay.maxBodyBytes, (captured) => finishRecord(lease, replay, config.logger, captured));
    }
    return {
      end: () => config.guard.end(held),
      responseDone: new Promise<void>((resolve) => onResponseOutcome(reply.raw, resolve, answeredOrStarted)),
    };
  } catch (err) {
    void config.guard.end(held);
    throw err;
  }
}

/**
 * The handler's work is over, as the response shows it: it finished; it closed after the app had
 * started or ended it (its headers are out: the handler produced its answer, e.g. a stream the
 * client stopped reading); or, when the client left before that, once the app ends it.
 */
const answeredOrStarted = (res: ServerResponse): boolean => res.writableEnded || res.headersSent;

/** Runs `onBusy`; true when it answered (sent the reply), so the default 409 is skipped. */
async function answeredByOnBusy(config: Config, request: FastifyRequest, reply: FastifyReply, info: BusyInfo): Promise<boolean> {
  if (config.onBusy === undefined) return false;
  await config.onBusy(request, reply, info);
  return reply.sent;
}
