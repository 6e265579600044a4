/**
 * One-route test apps for withLock on every framework (Express 5 and 4, Koa 3 and 2, Fastify 5,
 * Hono 4 on @hono/node-server). A test writes its handler once, framework-free: it gets the
 * exposed lock and the parsed body and returns a reply (JSON, text, bytes or streamed chunks,
 * with headers); throwing goes to the framework's error path, answered 500 `{ name, message }`.
 *
 * Every path and method reaches the route, behind a JSON body parser (Express `express.json()`,
 * Koa `@koa/bodyparser`, Fastify's own, Hono `c.req.json()`), so tests can vary method, path,
 * query and body freely. The middleware form is Fastify's `preHandler` hook.
 */
import type { RequestListener } from 'node:http';
import { Readable } from 'node:stream';
import express5, { type ErrorRequestHandler, type NextFunction, type Request, type Response } from 'express';
import express4 from 'express4';
import Koa3, { type Context, type Next } from 'koa';
import Koa2 from 'koa2';
import { bodyParser } from '@koa/bodyparser';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { Hono, type Context as HonoContext } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { withLock as expressWithLock } from '../../../src/adapters/express/with-lock.js';
import { withLock as koaWithLock } from '../../../src/adapters/koa/with-lock.js';
import { withLock as fastifyWithLock } from '../../../src/adapters/fastify/with-lock.js';
import { withLock as honoWithLock } from '../../../src/adapters/hono/with-lock.js';
import type { LockInfo } from '../../../src/adapters/http/lock-options.js';
import type { FrameworkKind, FrameworkName } from '../frameworks.js';

export type { FrameworkKind, FrameworkName } from '../frameworks.js';
export const frameworkNames: readonly FrameworkName[] = ['express', 'express4', 'koa', 'koa2', 'fastify', 'hono'];

/** The kind of a framework name (its adapter). */
export function kindOf(name: FrameworkName): FrameworkKind {
  return name.startsWith('express') ? 'express' : name.startsWith('koa') ? 'koa' : (name as FrameworkKind);
}

export interface Reply {
  status?: number;
  headers?: Record<string, string | string[]>;
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown;
  /** Sent one write at a time (Express `res.write`, Koa a stream body) instead of `body`. */
  chunks?: readonly (string | Buffer)[];
}

export interface HandlerInput {
  readonly lock: LockInfo | undefined;
  readonly body: unknown;
  readonly method: string;
  readonly path: string;
}

export type TestHandler = (input: HandlerInput) => Reply | Promise<Reply>;

export interface LockAppOptions {
  /** Options of withLock (untyped: both adapters take the same names). */
  lock: Record<string, unknown>;
  handler: TestHandler;
  /** `'middleware'`: withLock(options) then the handler; `'decorator'`: withLock(options, handler). @default 'middleware' */
  form?: 'middleware' | 'decorator';
  /** Options for the framework-specific hook, built per framework (e.g. onBusy). */
  perFramework?: (kind: FrameworkKind) => Record<string, unknown>;
}

export function lockApp(name: FrameworkName, options: LockAppOptions): RequestListener {
  const kind = kindOf(name);
  const lockOptions = { ...options.lock, ...options.perFramework?.(kind) };
  switch (kind) {
    case 'express':
      return expressApp(name === 'express' ? express5 : (express4 as typeof express5), lockOptions, options);
    case 'koa':
      return koaApp(name === 'koa' ? Koa3 : (Koa2 as typeof Koa3), lockOptions, options);
    case 'fastify':
      return fastifyApp(lockOptions, options);
    case 'hono':
      return honoApp(lockOptions, options);
  }
}

function expressApp(create: typeof express5, lockOptions: Record<string, unknown>, options: LockAppOptions): RequestListener {
  const app = create();
  app.use(create.json());
  const handler = async (req: Request, res: Response): Promise<void> => {
    const reply = await options.handler({ lock: req.lock, body: req.body, method: req.method, path: req.path });
    res.status(reply.status ?? 200);
    for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
    if (reply.chunks !== undefined) {
      for (const chunk of reply.chunks) res.write(chunk);
      res.end();
    } else if (typeof reply.body === 'string' || Buffer.isBuffer(reply.body) || reply.body === undefined) {
      res.send(reply.body ?? '');
    } else {
      res.json(reply.body);
    }
  };
  if (options.form === 'decorator') {
    app.all(/.*/, expressWithLock(lockOptions as never, handler));
  } else {
    app.all(/.*/, expressWithLock(lockOptions as never), (req: Request, res: Response, next: NextFunction) => {
      handler(req, res).catch(next);
    });
  }
  const onError: ErrorRequestHandler = (err, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    res.status(500).json({ name: (err as Error)?.name, message: String((err as Error)?.message ?? err) });
  };
  app.use(onError);
  return app as unknown as RequestListener;
}

function koaApp(Create: typeof Koa3, lockOptions: Record<string, unknown>, options: LockAppOptions): RequestListener {
  const app = new Create();
  app.silent = true;
  app.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      ctx.status = 500;
      ctx.body = { name: (err as Error)?.name, message: String((err as Error)?.message ?? err) };
    }
  });
  app.use(bodyParser());
  const handler = async (ctx: Context): Promise<void> => {
    const reply = await options.handler({
      lock: ctx.state.lock as LockInfo | undefined,
      body: (ctx.request as { body?: unknown }).body,
      method: ctx.method,
      path: ctx.path,
    });
    ctx.status = reply.status ?? 200;
    for (const [name, value] of Object.entries(reply.headers ?? {})) ctx.set(name, value);
    if (reply.chunks !== undefined) ctx.body = Readable.from(reply.chunks);
    else ctx.body = reply.body ?? '';
  };
  if (options.form === 'decorator') app.use(koaWithLock(lockOptions as never, handler));
  else {
    app.use(koaWithLock(lockOptions as never));
    app.use(handler);
  }
  return app.callback();
}

function fastifyApp(lockOptions: Record<string, unknown>, options: LockAppOptions): RequestListener {
  const app = Fastify();
  app.setErrorHandler((err, _request, reply) => {
    void reply.code(500).send({ name: (err as Error)?.name, message: String((err as Error)?.message ?? err) });
  });
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const query = request.url.indexOf('?');
    const reply_ = await options.handler({
      lock: request.lock,
      body: request.body,
      method: request.method,
      path: query === -1 ? request.url : request.url.slice(0, query),
    });
    reply.code(reply_.status ?? 200);
    for (const [name, value] of Object.entries(reply_.headers ?? {})) reply.header(name, value);
    if (reply_.chunks !== undefined) return reply.send(Readable.from(reply_.chunks));
    return reply.send(reply_.body ?? '');
  };
  if (options.form === 'decorator') app.all('*', fastifyWithLock(lockOptions as never, handler));
  else app.all('*', { preHandler: fastifyWithLock(lockOptions as never) }, handler);
  const ready = app.ready();
  return (req, res) => void ready.then(() => app.routing(req, res));
}

function honoApp(lockOptions: Record<string, unknown>, options: LockAppOptions): RequestListener {
  const app = new Hono();
  app.onError((err, c) => c.json({ name: err.name, message: String(err.message) }, 500));
  const handler = async (c: HonoContext): Promise<globalThis.Response> => {
    const json = (c.req.header('content-type') ?? '').includes('json');
    const reply = await options.handler({
      lock: c.get('lock' as never) as LockInfo | undefined,
      body: json ? await c.req.json() : undefined,
      method: c.req.method,
      path: c.req.path,
    });
    const status = (reply.status ?? 200) as never;
    for (const [name, value] of Object.entries(reply.headers ?? {})) {
      for (const item of Array.isArray(value) ? value : [value]) c.header(name, item, { append: true });
    }
    if (reply.chunks !== undefined) {
      const chunks = reply.chunks;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
          controller.close();
        },
      });
      return c.body(stream, status);
    }
    if (reply.body === undefined && (reply.status === 204 || reply.status === 304)) return c.body(null, status); // a null-body status
    if (typeof reply.body === 'string' || reply.body === undefined) return c.text(reply.body ?? '', status);
    if (Buffer.isBuffer(reply.body)) return c.body(reply.body as Uint8Array<ArrayBuffer>, status);
    return c.json(reply.body as object, status);
  };
  if (options.form === 'decorator') app.all('*', honoWithLock(lockOptions as never, handler));
  else app.all('*', honoWithLock(lockOptions as never), handler);
  return getRequestListener(app.fetch);
}
