/**
 * Koa (2 and 3) lock-guard: `withLock(options)` as middleware and `withLock(options, handler)`
 * wrapping one handler `(ctx, next)`. The lease is auto-extended (every ttl/3, up to `maxHold`)
 * while `await next()` (or the handler) runs, and ended when it settles — also when the client
 * has gone meanwhile, since Koa tells us exactly when the downstream work is over.
 *
 * Replay mode stores the response Koa is about to send (string, Buffer, JSON body, or a stream,
 * captured as it flows) before it is sent; a thrown error aborts the record so a retry runs.
 * A streamed body keeps the lease until the stream ends; if it fails or the client leaves
 * mid-stream, the record is aborted.
 */
import { Readable, pipeline } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { ConfigError, formatValue, lockInfo, type BusyInfo, type IdempotencyLease, type LockInfo } from '../../core/index.js';
import { lockAnswer } from '../http/answers.js';
import { captureStream } from '../http/idempotency-capture.js';
import { clientGoneSignal } from '../http/client-gone.js';
import { readLockRequest, resolveWithLock, type HttpLock, type ReplayConfig, type RequestAccess, type WithLockOptionsBase } from '../http/lock-options.js';
import { finishRecord } from '../http/replay-record.js';
import { setAnswer } from './set-answer.js';

export type { BusyInfo, LockInfo } from '../../core/index.js';

declare module 'koa' {
  interface DefaultState {
    /** The lease of `withLock` while the handler runs: key, token, fence and an abort signal. */
    lock?: LockInfo | undefined;
  }
}

/** `ctx.state` as `withLock` fills it, for apps that type their state explicitly. */
export interface LockState {
  lock?: LockInfo | undefined;
}

/** Called instead of the default 409 when the key is busy; answers by setting `ctx.status`/`ctx.body`. */
export type KoaOnBusy = (ctx: Context, info: BusyInfo) => unknown;

/** `withLock()` options for Koa; see lock-options.ts for each option. */
export type KoaWithLockOptions = WithLockOptionsBase<Context, KoaOnBusy>;

/** A handler run under the lock by the decorator form. */
export type KoaLockedHandler = (ctx: Context, next: Next) => unknown;

type Config = HttpLock<Context, KoaOnBusy>;

const KOA_REQUEST: RequestAccess<Context> = {
  node: (ctx) => ctx.req,
  method: (ctx) => ctx.method,
  url: (ctx) => ctx.originalUrl,
  body: (ctx) => (ctx.request as { body?: unknown }).body,
};

/** Statuses whose responses carry no body (Koa's `statuses.empty`). */
const EMPTY_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * @example
 * router.post('/orders', withLock({ store, key: (ctx) => `cart:${ctx.request.body.cartId}` }), createOrder);
 * router.post('/payments', bodyParser(), withLock({ store, replay: { ttl: '24h' } }), pay);
 * router.post('/refunds/:id', withLock({ store, key: (ctx) => ctx.params.id }, refund));
 * @throws ConfigError at construction, naming the bad option.
 */
export function withLock(options?: KoaWithLockOptions): Middleware;
export function withLock(options: KoaWithLockOptions | undefined, handler: KoaLockedHandler): Middleware;
export function withLock(options: KoaWithLockOptions = {}, handler?: KoaLockedHandler): Middleware {
  const config = resolveWithLock<Context, KoaOnBusy>(options, 'withLock', KOA_REQUEST);
  if (handler !== undefined && typeof handler !== 'function') {
    throw new ConfigError(`withLock(options, handler): handler must be a function (ctx, next); got ${formatValue(handler)}`);
  }
  const run = (ctx: Context, next: Next): Promise<unknown> => Promise.resolve(handler === undefined ? next() : handler(ctx, next));

  return async function ratelockWithLock(ctx: Context, next: Next): Promise<void> {
    const outcome = await config.guard.open(ctx, await readLockRequest(config, ctx, () => clientGoneSignal(ctx.res)));
    if (outcome.kind === 'store-failed' && outcome.mode === 'open') {
      await run(ctx, next); // unguarded
      return;
    }
    if (outcome.kind === 'client-gone') return; // its connection is closed: Koa writes nothing
    if (outcome.kind !== 'held') {
      if (outcome.kind !== 'busy' || !(await answeredByOnBusy(config, ctx, outcome.info))) setAnswer(ctx, lockAnswer(outcome));
      return;
    }
    const { held } = outcome;
    try {
      ctx.state.lock = lockInfo(held);
      held.lease.autoExtend();
      await run(ctx, next);
      // A lock is released now; a record is completed with the response Koa is about to send.
      if (held.kind === 'lock') await config.guard.end(held);
      else await storeResponse(ctx, held.lease, config.replay!, config);
    } catch (err) {
      // The handler threw, or its body cannot be stored (JSON.stringify failed): never leave the
      // lock held or the record in flight.
      await config.guard.end(held);
      throw err;
    }
  };
}

/** Completes the record with the response Koa is about to send (a stream: as it ends). */
async function storeResponse(ctx: Context, lease: IdempotencyLease, replay: ReplayConfig<Context>, config: Config): Promise<void> {
  const status = ctx.status;
  const source = streamOf(ctx.body);
  if (source === undefined) {
    const { bytes, contentType } = bodyBytes(ctx);
    const headers = { ...ctx.response.headers };
    if (contentType !== undefined) headers['content-type'] = contentType;
    await finishRecord(lease, replay, config.logger, { status, headers, body: bytes.length > replay.maxBodyBytes ? null : bytes });
    return;
  }
  // Replacing the body drops a Content-Length the handler set; the bytes do not change, so keep it.
  const length: unknown = ctx.response.get('Content-Length');
  const capture = captureStream(
    replay.maxBodyBytes,
    (captured) => finishRecord(lease, replay, config.logger, { status, headers: ctx.response.headers, body: captured }),
    () => void finishRecord(lease, replay, config.logger, undefined),
  );
  // Errors and early closes travel both ways (the capture then aborts the record); nothing to do here.
  pipeline(source, capture, () => undefined);
  ctx.body = capture;
  if ((typeof length === 'string' && length !== '') || typeof length === 'number') ctx.set('Content-Length', String(length));
}

/** The body as a Node stream when it is one (Node stream, web stream, Blob, Response), else undefined. */
function streamOf(body: unknown): Readable | undefined {
  if (body instanceof Readable) return body;
  if (body !== null && typeof body === 'object' && typeof (body as { pipe?: unknown }).pipe === 'function') {
    return new Readable({ read() {} }).wrap(body as NodeJS.ReadableStream); // an old-style stream
  }
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return Readable.fromWeb(body as never);
  if (typeof Blob !== 'undefined' && body instanceof Blob) return Readable.fromWeb(body.stream() as never);
  if (typeof Response !== 'undefined' && body instanceof Response) {
    return body.body === null ? Readable.from([]) : Readable.fromWeb(body.body as never);
  }
  return undefined;
}

/** The bytes Koa's `respond()` sends for a non-stream body, and the Content-Type it adds then. */
function bodyBytes(ctx: Context): { bytes: Buffer; contentType?: string } {
  const body: unknown = ctx.body;
  if (EMPTY_BODY_STATUSES.has(ctx.status) || body === null) return { bytes: Buffer.alloc(0) };
  if (Buffer.isBuffer(body)) return { bytes: body };
  if (typeof body === 'string') return { bytes: Buffer.from(body) };
  if (body === undefined) {
    return { bytes: Buffer.from(ctx.message || String(ctx.status)), contentType: 'text/plain; charset=utf-8' };
  }
  return { bytes: Buffer.from(JSON.stringify(body) ?? '') };
}

async function answeredByOnBusy(config: Config, ctx: Context, info: BusyInfo): Promise<boolean> {
  if (config.onBusy === undefined) return false;
  const status = ctx.status;
  const body: unknown = ctx.body;
  await config.onBusy(ctx, info);
  return ctx.status !== status || ctx.body !== body;
}

