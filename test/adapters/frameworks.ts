/**
 * The four frameworks every adapter test runs on (Express 5 and 4, Koa 3 and 2), behind one small
 * interface so a test is written once: build an app with some middleware in front of a few fixed
 * routes, and read what the adapter exposed.
 *
 * Fixed routes (any method): `/status/:code` → that status; `/slow/:ms/:code` → that status after
 * `ms` (a handler with a side effect, see `onSlowDone`); `/throw/:code` → an error with that status
 * passed to the framework's error path; `/decision` → 200 with the exposed decision as JSON; any
 * other path → 200 `ok`. Errors passed to the framework's error
 * path are answered 500 `{ code, name, message }`, so tests can assert the ConfigError.
 */
import type { RequestListener } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express5, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import express4 from 'express4';
import Koa3, { type Context, type Middleware } from 'koa';
import Koa2 from 'koa2';
import type { Decision } from '../../src/core/decision.js';
import { rateLimit as expressRateLimit } from '../../src/adapters/express/rate-limit.js';
import { rateLimitRoutes as expressRateLimitRoutes } from '../../src/adapters/express/routes.js';
import { rateLimit as koaRateLimit } from '../../src/adapters/koa/rate-limit.js';
import { rateLimitRoutes as koaRateLimitRoutes } from '../../src/adapters/koa/routes.js';

export type FrameworkName = 'express' | 'express4' | 'koa' | 'koa2';

export interface AppOptions {
  /** Express `trust proxy` hop count / Koa `app.proxy` + `maxIpsCount`. */
  trustProxyHops?: number;
  /** Called when the `/slow/:ms/:code` route starts its work. */
  onSlowStart?: () => void;
  /** Called when the `/slow/:ms/:code` route has produced its response (also when its client left). */
  onSlowDone?: (status: number) => void;
}

/** What a test needs from one framework; options are passed through untyped (both adapters take the same names). */
export interface Framework {
  readonly name: FrameworkName;
  readonly kind: 'express' | 'koa';
  /** `rateLimit(options)` of this adapter. */
  rateLimit(options: Record<string, unknown>): unknown;
  /** `rateLimitRoutes(options)` of this adapter. */
  rateLimitRoutes(options: Record<string, unknown>): unknown;
  /** An app with `middleware` in front of the fixed routes, as a Node request listener. */
  app(middleware: readonly unknown[], options?: AppOptions): RequestListener;
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

export const frameworks: readonly Framework[] = [
  expressFramework('express', express5),
  expressFramework('express4', express4),
  koaFramework('koa', Koa3),
  koaFramework('koa2', Koa2),
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
