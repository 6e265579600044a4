/**
 * How ratelock reads a Hono request. Hono's Context has no `.ip`, `.headers` or `.query` of its
 * own, so every ratelock middleware marks the context with a view (keys/request-view.ts) before
 * any key extractor runs.
 *
 * The client address is the connecting socket's, from @hono/node-server's bindings
 * (`c.env.incoming.socket.remoteAddress`, what its `getConnInfo()` reads), read directly so
 * importing 'ratelock/hono' loads no @hono/node-server module. No proxy header is trusted by
 * default; `trustProxy({ hops })` (below) makes the app read `X-Forwarded-For`, and only that.
 * Headers are read from the Node request's field lines when present (a repeated header keeps its
 * first value, as in the Express adapter), else from the web request.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { ConfigError, formatValue, readOptions } from '../../core/index.js';
import { markRequestView, setRequestView, type RequestView } from '../../keys/index.js';
import type { HeaderLines } from '../http/idempotency-key.js';

/** @hono/node-server's bindings (`c.env`), possibly under `server` when the app has bindings of its own. */
interface NodeBindings {
  readonly incoming?: IncomingMessage | undefined;
  readonly server?: { readonly incoming?: IncomingMessage | undefined } | undefined;
}

/** The Node request behind `c` when served by @hono/node-server, else undefined. */
export function incomingOf(c: Context): IncomingMessage | undefined {
  const env = c.env as NodeBindings | undefined;
  return env?.server?.incoming ?? env?.incoming;
}

function socketAddress(c: Context): string | undefined {
  return incomingOf(c)?.socket?.remoteAddress;
}

function firstHeader(c: Context, name: string): string | undefined {
  const incoming = incomingOf(c);
  if (incoming !== undefined) return incoming.headersDistinct[name]?.[0];
  return c.req.header(name);
}

/** The view of a Hono context when no proxy is trusted: the socket's address. */
export const HONO_VIEW: RequestView<Context> = {
  address: socketAddress,
  header: firstHeader,
  query: (c, name) => c.req.query(name),
  proxyTrust: () => 'none',
};

/** Marks `c` for the key extractors (unless `trustProxy` marked it first). Every ratelock middleware calls it first. */
export function markHonoRequest(c: Context): void {
  markRequestView(c, HONO_VIEW);
}

/**
 * The Idempotency-Key field lines: the Node request's when served by @hono/node-server; else the
 * web request's header, where a repeated header arrives joined with ', ' (then read as one value).
 */
export function headerLinesOf(c: Context): HeaderLines {
  const incoming = incomingOf(c);
  if (incoming !== undefined) return incoming;
  const value = c.req.header('idempotency-key');
  return { headersDistinct: value === undefined ? {} : { 'idempotency-key': [value] }, rawHeaders: [] };
}

/** The request target as received (path and query), e.g. `/orders/42?expand=items`. */
export function requestTarget(c: Context): string {
  const raw = incomingOf(c)?.url;
  if (raw !== undefined) return raw;
  const url = c.req.url;
  const start = url.indexOf('/', url.indexOf('://') + 3);
  return start === -1 ? '/' : url.slice(start);
}

export interface TrustProxyOptions {
  /** How many proxies in front of the app append to X-Forwarded-For (1: one load balancer or reverse proxy). */
  hops: number;
}

/**
 * The client address behind `hops` trusted proxies, as Express's `trust proxy = hops` computes it:
 * the addresses are the socket's, then the `X-Forwarded-For` entries from right to left; the
 * first `hops` of them are trusted proxies, and the next one is the client (the leftmost entry
 * when there are fewer). Entries a client wrote itself, left of those, are never believed.
 */
function forwardedAddress(c: Context, hops: number): string | undefined {
  const socket = socketAddress(c);
  if (socket === undefined) return undefined;
  const incoming = incomingOf(c);
  const header = incoming !== undefined ? incoming.headers['x-forwarded-for'] : c.req.header('x-forwarded-for');
  if (typeof header !== 'string' || header === '') return socket;
  const entries = header.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.length === 0) return socket;
  const index = Math.min(hops, entries.length);
  return entries[entries.length - index];
}

/**
 * Makes ratelock's middlewares key requests by the client address behind `hops` trusted proxies,
 * read from the `X-Forwarded-For` request header (and no other): Hono has no `trust proxy`
 * setting of its own. Mount it before ratelock's middlewares, and only behind proxies that set
 * that header; the hop count must match them, or clients can pick their own key.
 *
 * @example
 * app.use(trustProxy({ hops: 1 })); // behind one reverse proxy
 * app.use(rateLimit({ store, limit: 100, window: '1m' }));
 * @throws ConfigError when `hops` is not an integer from 1 to 32.
 */
export function trustProxy(options: TrustProxyOptions): MiddlewareHandler {
  const { hops } = readOptions(options, ['hops'], 'trustProxy()', '{ hops: 1 }') as Partial<TrustProxyOptions>;
  if (typeof hops !== 'number' || !Number.isInteger(hops) || hops < 1 || hops > 32) {
    throw new ConfigError(`trustProxy() option hops must be an integer from 1 to 32 (the number of proxies in front of the app); got ${formatValue(hops)}`);
  }
  const view: RequestView<Context> = { ...HONO_VIEW, address: (c) => forwardedAddress(c, hops), proxyTrust: () => 'bounded' };
  return async function ratelockTrustProxy(c, next) {
    setRequestView(c, view);
    await next();
  };
}
