/**
 * Run-time checks of the app's proxy settings, each logged once per process (not per request),
 * as express-rate-limit's validations do:
 *
 * - `ERR_RATELOCK_PERMISSIVE_TRUST_PROXY`: Express `trust proxy` is `true`, or Koa `app.proxy` is
 *   on without `maxIpsCount`. The framework then takes the LEFTMOST `X-Forwarded-For` entry, which
 *   any client can write, so a client picks its own rate-limit key.
 * - `ERR_RATELOCK_UNEXPECTED_X_FORWARDED_FOR`: a request carries `X-Forwarded-For` but the app does
 *   not trust proxies, so every client behind the proxy shares the proxy's address (one bucket).
 *
 * Hono apps are checked through their adapter's view (request-view.ts); Fastify's `trustProxy` is
 * not readable from a request, so Fastify apps are not checked.
 */
import type { Logger } from '../core/index.js';
import { requestView, type ProxyTrust } from './request-view.js';

let permissiveWarned = false;
let unexpectedForwardedWarned = false;

/**
 * Each app's proxy trust, read on its first request: apps are configured before they serve, and
 * reading Express's `app.get('trust proxy')` on every request costs more than the check itself.
 */
const trustByApp = new WeakMap<object, ProxyTrust>();

/** Checks `req` (Express request or Koa context) and warns once per process per finding. */
export function checkProxySettings(req: any, logger: Logger): void {
  if (permissiveWarned && unexpectedForwardedWarned) return;
  const trust = proxyTrust(req);
  if (trust === undefined || trust === 'bounded') return;
  if (!permissiveWarned && trust === 'permissive') {
    permissiveWarned = true;
    logger.warn(
      '[ratelock] ERR_RATELOCK_PERMISSIVE_TRUST_PROXY: the app trusts every proxy (Express "trust proxy" = true, or Koa app.proxy without app.maxIpsCount), ' +
        'so the client IP is the leftmost X-Forwarded-For entry, which clients can forge to evade rate limits. ' +
        'Set "trust proxy" to the number of proxies in front of the app (e.g. 1), or Koa app.maxIpsCount.',
    );
  }
  if (!unexpectedForwardedWarned && trust === 'none' && forwardedFor(req) !== undefined) {
    unexpectedForwardedWarned = true;
    logger.warn(
      '[ratelock] ERR_RATELOCK_UNEXPECTED_X_FORWARDED_FOR: a request carries X-Forwarded-For but the app does not trust proxies, ' +
        "so all clients behind that proxy share the proxy's address (one rate-limit bucket). " +
        'If the app runs behind a proxy, set Express "trust proxy" (e.g. 1), Koa app.proxy = true with app.maxIpsCount, or use trustProxy({ hops: 1 }) from ratelock/hono.',
    );
  }
}

/** The request's X-Forwarded-For header, read as the extractors read headers. */
function forwardedFor(req: any): unknown {
  const view = requestView(req);
  return view === undefined ? req.headers?.['x-forwarded-for'] : view.header(req, 'x-forwarded-for');
}

/**
 * How the framework derives the client address: from the adapter's view (Hono), else from the app's
 * setting; `undefined` when `req` is neither (a Fastify request: its `trustProxy` is not readable).
 */
function proxyTrust(req: any): ProxyTrust | undefined {
  const view = requestView(req);
  if (view !== undefined) return view.proxyTrust(req);
  const app = req?.app;
  // An Express app is a function, a Koa app an object: both can key a WeakMap.
  if (app === null || (typeof app !== 'object' && typeof app !== 'function')) return undefined;
  let trust = trustByApp.get(app);
  if (trust === undefined) {
    trust = readProxyTrust(app);
    if (trust !== undefined) trustByApp.set(app, trust);
  }
  return trust;
}

function readProxyTrust(app: any): ProxyTrust | undefined {
  if (typeof app.get === 'function') {
    // Express: the raw setting (`false` by default; a hop count, address list or function otherwise).
    const setting = app.get('trust proxy');
    if (setting === true) return 'permissive';
    return setting === false || setting === undefined || setting === 0 ? 'none' : 'bounded';
  }
  if (typeof app.proxy === 'boolean') {
    // Koa: `maxIpsCount` 0 (the default) means every X-Forwarded-For entry is believed.
    if (!app.proxy) return 'none';
    return app.maxIpsCount > 0 ? 'bounded' : 'permissive';
  }
  return undefined;
}
