/**
 * The frameworks every adapter test runs on (Express 5 and 4, Koa 3 and 2, Fastify 5, Hono 4 on
 * @hono/node-server), behind one small interface so a test is written once: build an app with some
 * middleware in front of a few fixed routes, and read what the adapter exposed. For Fastify a
 * "middleware" is a plugin registration (`fw.rateLimit(options)` returns one), registered before
 * the routes; for Hono it is `app.use()`d.
 *
 * Fixed routes (any method): `/status/:code` → that status; `/slow/:ms/:code` → that status after
 * `ms` (a handler with a side effect, see `onSlowDone`); `/throw/:code` → an error with that status
 * passed to the framework's error path; `/decision` → 200 with the exposed decision as JSON; any
 * other path → 200 `ok`. Errors passed to the framework's error
 * path are answered 500 `{ code, name, message }`, so tests can assert the ConfigError.
 *
 * Callbacks receive what each adapter passes (Express `req`, Koa `ctx`, Fastify `request`, Hono
 * `c`): tests read them through `fw.header()` / `fw.path()`, and build the framework-shaped hooks
 * (`onLimited` that answers, a `refund` predicate) through the framework.
 */
import type { RequestListener } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express5, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import express4 from 'express4';
import Koa3, { type Context, type Middleware } from 'koa';
import Koa2 from 'koa2';
import Fastify, { type FastifyPluginCallback, type FastifyReply, type FastifyRequest } from 'fastify';
import { Hono, type Context as HonoContext, type MiddlewareHandler } from 'hono';
import { getRequestListener } from '@hono/node-server';
import type { Decision } from '../../src/core/decision.js';
import { rateLimit as expressRateLimit } from '../../src/adapters/express/rate-limit.js';
import { rateLimitRoutes as expressRateLimitRoutes } from '../../src/adapters/express/routes.js';
import { rateLimit as koaRateLimit } from '../../src/adapters/koa/rate-limit.js';
import { rateLimitRoutes as koaRateLimitRoutes } from '../../src/adapters/koa/routes.js';
import { pluginLimiters, rateLimit as fastifyRateLimit } from '../../src/adapters/fastify/rate-limit.js';
import { rateLimitRoutes as fastifyRateLimitRoutes, routeTableHook } from '../../src/adapters/fastify/routes.js';
import { rateLimit as honoRateLimit } from '../../src/adapters/hono/rate-limit.js';
import { rateLimitRoutes as honoRateLimitRoutes } from '../../src/adapters/hono/routes.js';
import { trustProxy } from '../../src/adapters/hono/request-view.js';

export type FrameworkName = 'express' | 'express4' | 'koa' | 'koa2' | 'fastify' | 'hono';
export type FrameworkKind = 'express' | 'koa' | 'fastify' | 'hono';

export interface AppOptions {
  /** Express `trust proxy` hop count / Koa `app.proxy` + `maxIpsCount` / Fastify `trustProxy` / Hono `trustProxy({ hops })`. */
  trustProxyHops?: number;
  /** Called when the `/slow/:ms/:code` route starts its work. */
  onSlowStart?: () => void;
  /** Called when the `/slow/:ms/:code` route has produced its response (also when its client left). */
  onSlowDone?: (status: number) => void;
}

/** What a test needs from one framework; options are passed through untyped (the adapters take the same names). */
export interface Framework {
  readonly name: FrameworkName;
  readonly kind: FrameworkKind;
  /** `rateLimit(options)` of this adapter (for Fastify: a registration of the plugin with these options). */
  rateLimit(options: Record<string, unknown>): unknown;
  /** `rateLimitRoutes(options)` of this adapter (for Fastify: a registration of the plugin). */
  rateLimitRoutes(options: Record<string, unknown>): unknown;
  /** An app with `middleware` in front of the fixed routes, as a Node request listener. */
  app(middleware: readonly unknown[], options?: AppOptions): RequestListener;
  /** A request header, from what the adapter's callbacks receive. */
  header(req: unknown, name: string): string | undefined;
  /** The request path (no query), from what the adapter's callbacks receive. */
  path(req: unknown): string;
  /** An `onLimited` hook that answers itself: `status` with the JSON body `body(decision)`. */
  onLimitedAnswering(status: number, body: (decision: Decision) => unknown): unknown;
  /** The index of the decision among `onLimited`'s arguments. */
  readonly onLimitedDecisionArg: number;
  /** A `refund` predicate: true when the response's status is `status`. */
  refundOnStatus(status: number): unknown;
}

/** A Fastify plugin registration, as `fw.rateLimit()` returns it for Fastify. */
export interface FastifyRegistration {
  readonly plugin: FastifyPluginCallback<never>;
  readonly options: Record<string, unknown>;
}

function errorBody(err: unknown): { code?: unknown; name?: unknown; message: string } {
  const error = err as { code?: unknown; name?: unknown; message?: unknown };
  return { code: error?.code, name: error?.name, message: String(error?.message ?? err) };
}

function expressFramework(name: 'express' | 'express4', create: typeof express5): Framework {
  return {
    name,
    kind: 'express',
    rateLimit: (options) => expressRateLimit(options as never),
    rateLimitRoutes: (options) => expressRateLimitRoutes(options as never),
    header: (req, name) => (req as Request).headers[name] as string | undefined,
    path: (req) => (req as Request).path,
    onLimitedAnswering: (status, body) => (_req: Request, res: Response, decision: Decision) => void res.status(status).json(body(decision)),
    onLimitedDecisionArg: 2,
    refundOnStatus: (status) => (_req: Request, res: Response) => res.statusCode === status,
    app(middleware, options = {}) {
      const app = create();
      if (options.trustProxyHops !== undefined) app.set('trust proxy', options.trustProxyHops);
      for (const handler of middleware) app.use(handler as RequestHandler);
      app.all('/status/:code', (req: Request, res: Response) => void res.status(Number(req.params.code)).send(`status ${req.params.code}`));
      app.all('/slow/:ms/:code', async (req: Request, res: Response) => {
        options.onSlowStart?.();
        await sleep(Number(req.params.ms));
        const status = Number(req.params.code);
        options.onSlowDone?.(status);
        res.status(status).send(`status ${status}`);
      });
      app.all('/throw/:code', (req: Request, _res: Response, next) => next(Object.assign(new Error('thrown'), { status: Number(req.params.code) })));
      app.all('/decision', (req: Request, res: Response) => void res.json({ decision: req.rateLimit ?? null }));
      app.use((_req: Request, res: Response) => void res.send('ok'));
      const onError: ErrorRequestHandler = (err, _req, res, _next) => void res.status(500).json(errorBody(err));
      app.use(onError);
      return app as unknown as RequestListener;
    },
  };
}

function koaFramework(name: 'koa' | 'koa2', Create: typeof Koa3): Framework {
  return {
    name,
    kind: 'koa',
    rateLimit: (options) => koaRateLimit(options as never),
    rateLimitRoutes: (options) => koaRateLimitRoutes(options as never),
    header: (ctx, name) => (ctx as Context).headers[name] as string | undefined,
    path: (ctx) => (ctx as Context).path,
    onLimitedAnswering: (status, body) => (ctx: Context, decision: Decision) => {
      ctx.status = status;
      ctx.body = body(decision);
    },
    onLimitedDecisionArg: 1,
    refundOnStatus: (status) => (ctx: Context) => ctx.status === status,
    app(middleware, options = {}) {
      const app = new Create();
      if (options.trustProxyHops !== undefined) {
        app.proxy = true;
        app.maxIpsCount = options.trustProxyHops;
      }
      app.silent = true;
      const catchErrors: Middleware = async (ctx, next) => {
        try {
          await next();
        } catch (err) {
          ctx.status = 500;
          ctx.body = errorBody(err);
        }
      };
      app.use(catchErrors);
      for (const handler of middleware) app.use(handler as Middleware);
      app.use(async (ctx: Context) => {
        const segments = ctx.path.split('/').filter(Boolean);
        if (segments[0] === 'status' && segments.length === 2) {
          ctx.status = Number(segments[1]);
          ctx.body = `status ${segments[1]}`;
        } else if (segments[0] === 'slow' && segments.length === 3) {
          options.onSlowStart?.();
          await sleep(Number(segments[1]));
          const status = Number(segments[2]);
          options.onSlowDone?.(status);
          ctx.status = status;
          ctx.body = `status ${status}`;
        } else if (segments[0] === 'throw' && segments.length === 2) {
          ctx.throw(Number(segments[1]), 'thrown');
        } else if (ctx.path === '/decision') ctx.body = { decision: (ctx.state.rateLimit as Decision | undefined) ?? null };
        else ctx.body = 'ok';
      });
      return app.callback();
    },
  };
}

/** The path of a Fastify request: its URL without the query. */
function fastifyPath(request: FastifyRequest): string {
  const query = request.url.indexOf('?');
  return query === -1 ? request.url : request.url.slice(0, query);
}

const fastifyFramework: Framework = {
  name: 'fastify',
  kind: 'fastify',
  // Validated now, as the other adapters validate at construction; the registration reuses the
  // result (one limiter per options object). fastify-plugins.test.ts checks register() itself.
  rateLimit: (options) => {
    pluginLimiters(options);
    return { plugin: fastifyRateLimit, options } satisfies FastifyRegistration;
  },
  rateLimitRoutes: (options) => {
    routeTableHook(options as never);
    return { plugin: fastifyRateLimitRoutes, options } satisfies FastifyRegistration;
  },
  header: (request, name) => (request as FastifyRequest).headers[name] as string | undefined,
  path: (request) => fastifyPath(request as FastifyRequest),
  onLimitedAnswering: (status, body) => (_request: FastifyRequest, reply: FastifyReply, decision: Decision) => void reply.code(status).send(body(decision)),
  onLimitedDecisionArg: 2,
  refundOnStatus: (status) => (_request: FastifyRequest, reply: FastifyReply) => reply.statusCode === status,
  app(middleware, options = {}) {
    // Fastify refuses hop counts (it cannot check the peer from a count): one trusted hop is the
    // test client's proxy address, the loopback.
    if (options.trustProxyHops !== undefined && options.trustProxyHops !== 1) throw new RangeError('the Fastify test app trusts one proxy hop at most');
    const app = Fastify(options.trustProxyHops === undefined ? {} : { trustProxy: '127.0.0.1' });
    app.setErrorHandler((err, _request, reply) => void reply.code(500).send(errorBody(err)));
    for (const registration of middleware as readonly FastifyRegistration[]) app.register(registration.plugin, registration.options as never);
    // Routes in a plugin registered after the limiters, so their onRoute hooks see every route.
    app.register((routes, _options, done) => {
      routes.all('/status/:code', (request, reply) => {
        const code = Number((request.params as { code: string }).code);
        void reply.code(code).send(`status ${code}`);
      });
      routes.all('/slow/:ms/:code', async (request, reply) => {
        const params = request.params as { ms: string; code: string };
        options.onSlowStart?.();
        await sleep(Number(params.ms));
        const status = Number(params.code);
        options.onSlowDone?.(status);
        return reply.code(status).send(`status ${status}`);
      });
      routes.all('/throw/:code', async (request) => {
        throw Object.assign(new Error('thrown'), { statusCode: Number((request.params as { code: string }).code) });
      });
      routes.all('/decision', async (request) => ({ decision: request.rateLimit ?? null }));
      routes.all('*', async () => 'ok');
      done();
    });
    const ready = app.ready();
    return (req, res) => {
      ready.then(
        () => app.routing(req, res),
        (err: unknown) => {
          res.statusCode = 500;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(errorBody(err)));
        },
      );
    };
  },
};

const honoFramework: Framework = {
  name: 'hono',
  kind: 'hono',
  rateLimit: (options) => honoRateLimit(options as never),
  rateLimitRoutes: (options) => honoRateLimitRoutes(options as never),
  header: (c, name) => (c as HonoContext).req.header(name),
  path: (c) => (c as HonoContext).req.path,
  onLimitedAnswering: (status, body) => (c: HonoContext, decision: Decision) => c.json(body(decision) as object, status as never),
  onLimitedDecisionArg: 1,
  refundOnStatus: (status) => (c: HonoContext) => c.res.status === status,
  app(middleware, options = {}) {
    const app = new Hono();
    app.onError((err, c) => c.json(errorBody(err), 500));
    if (options.trustProxyHops !== undefined) app.use(trustProxy({ hops: options.trustProxyHops }));
    for (const handler of middleware) app.use(handler as MiddlewareHandler);
    const answer = (c: HonoContext, status: number) => (status === 204 || status === 304 ? c.body(null, status) : c.text(`status ${status}`, status as never));
    app.all('/status/:code', (c) => answer(c, Number(c.req.param('code'))));
    app.all('/slow/:ms/:code', async (c) => {
      options.onSlowStart?.();
      await sleep(Number(c.req.param('ms')));
      const status = Number(c.req.param('code'));
      options.onSlowDone?.(status);
      return answer(c, status);
    });
    app.all('/throw/:code', (c) => {
      throw Object.assign(new Error('thrown'), { status: Number(c.req.param('code')) });
    });
    app.all('/decision', (c) => c.json({ decision: (c.get('rateLimit' as never) as Decision | undefined) ?? null }));
    app.all('*', (c) => c.text('ok'));
    return getRequestListener(app.fetch);
  },
};

export const frameworks: readonly Framework[] = [
  expressFramework('express', express5),
  expressFramework('express4', express4),
  koaFramework('koa', Koa3),
  koaFramework('koa2', Koa2),
  fastifyFramework,
  honoFramework,
];

/** A logger that records lines instead of printing them. */
export function recordingLogger(): { warn(message: string): void; error(message: string): void; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (message: string) => void lines.push(message),
    error: (message: string) => void lines.push(message),
  };
}
