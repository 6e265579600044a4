/**
 * Fastify 5 rate limiting: `fastify.register(rateLimit, options)`, a plugin without encapsulation
 * (like one made with fastify-plugin) whose limits apply to the routes registered after it on that
 * instance and its children, and to its not-found handler. Only HTTP translation lives here: the
 * options are parsed in `../http/limiter-options.ts`, the decision is core's RateLimiter's.
 *
 * - The plugin's limits are ONE quota across all those routes (as `app.use(rateLimit(...))` in
 *   Express), keyed per client.
 * - A route's `config.rateLimit` (as @fastify/rate-limit users write it) replaces them on that
 *   route: its options are merged over the plugin's (a `limit` alone keeps the plugin's `window`;
 *   `limits` replace the plugin's limits) and its limits count per route (the route's
 *   logs are named after it, e.g. `rl:POST_/login:`, unless it sets its own `prefix`); a GET route
 *   and the HEAD route Fastify adds for it share one count. `config.rateLimit: false` opts a route
 *   out. With `global: false` only routes with a `config.rateLimit` are limited.
 * - Each limiter is added to its routes' hook (`onRequest` by default, `hook` option) when the
 *   route is registered, so a request costs no lookup. A bad `config.rateLimit` fails that
 *   route's registration with a ConfigError naming the route.
 * - Limited responses go through `reply` (status, headers, body), so the app's hooks see them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ConfigError, DEFAULTS, formatValue, isThenable, type Decision } from '../../core/index.js';
import { STORE_UNAVAILABLE_ANSWER, passes } from '../http/answers.js';
import { retryAfterSeconds } from '../http/headers.js';
import { resolveRateLimit, type HttpLimiter, type RateLimitOptionsBase } from '../http/limiter-options.js';
import { OncePerRequest } from '../http/once-per-request.js';
import { refundWhenDone } from '../http/refund.js';
import { ruleNameFromRoute } from '../http/route-table.js';
import { LIMITER_HOOKS, withoutEncapsulation, type FastifyLimiterHook } from './plugin.js';
import { sendAnswer, setHeader } from './send-answer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The rate-limit decision of the last ratelock limiter that ran on this request. */
    rateLimit?: Decision | undefined;
  }
  interface FastifyContextConfig {
    /**
     * This route's own limits (counted per route), its options merged over the rateLimit plugin's;
     * `false`: the route is not limited by the plugin.
     */
    rateLimit?: FastifyRouteRateLimitOptions | false | undefined;
  }
}

/** Called on a limited request after status and headers are set; may send its own response with `reply.send()`. */
export type FastifyOnLimited = (request: FastifyRequest, reply: FastifyReply, decision: Decision) => unknown;

/** Decides whether a request's cost is given back, once its response's outcome is known (`reply.statusCode`). */
export type FastifyRefundPredicate = (request: FastifyRequest, reply: FastifyReply) => boolean;

/** A route's `config.rateLimit`: any rateLimit option, merged over the plugin's (its own limits replace the plugin's). */
export type FastifyRouteRateLimitOptions = RateLimitOptionsBase<FastifyRequest, FastifyOnLimited, FastifyRefundPredicate>;

/** `fastify.register(rateLimit, options)`: every rateLimit option, plus where and to which routes it applies. */
export interface FastifyRateLimitOptions extends FastifyRouteRateLimitOptions {
  /** Limit every route of the scope with these options; `false`: only routes with a `config.rateLimit`. @default true */
  global?: boolean | undefined;
  /** The hook the limiter runs in: `'onRequest'` (before the body is read), `'preValidation'` or `'preHandler'` (after your auth hooks). @default 'onRequest' */
  hook?: FastifyLimiterHook | undefined;
}

export type FastifyLimiter = HttpLimiter<FastifyRequest, FastifyOnLimited, FastifyRefundPredicate>;

/** A limiter as a Fastify hook: resolves to `reply` when it answered the request, else `undefined`. */
export type FastifyLimiterHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

/**
 * Splits the plugin's own options (`hook`, plus `extra` such as `global`) from the limiter's, so
 * the limiter's reader still refuses unknown names. Not an object: left to the limiter's reader.
 */
export function pluginSettings(
  options: unknown,
  extra: readonly string[] = [],
): { readonly hook: FastifyLimiterHook; readonly rest: Record<string, unknown>; readonly extra: Record<string, unknown> } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return { hook: 'onRequest', rest: options as never, extra: {} };
  const { hook, ...rest } = options as Record<string, unknown>;
  const found: Record<string, unknown> = {};
  for (const name of extra) {
    found[name] = rest[name];
    delete rest[name];
  }
  if (hook !== undefined && !(LIMITER_HOOKS as readonly unknown[]).includes(hook)) {
    throw new ConfigError(`hook must be one of ${LIMITER_HOOKS.map((name) => `'${name}'`).join(', ')}; got ${formatValue(hook)}`);
  }
  return { hook: (hook as FastifyLimiterHook | undefined) ?? 'onRequest', rest, extra: found };
}


function rateLimitPlugin(fastify: FastifyInstance, options: FastifyRateLimitOptions, done: (err?: Error) => void): void {
  try {
    setUp(fastify, options);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

/** One plugin registration's configured limiters: the plugin-wide one, and those of route configs. */
export interface PluginLimiters {
  readonly hook: FastifyLimiterHook;
  /** The limiter options, without the plugin's own. */
  readonly options: Record<string, unknown>;
  readonly global: FastifyLimiterHandler | undefined;
  /** By route config object, then URL (a GET route and its HEAD route share one). */
  readonly routes: WeakMap<object, Map<string, FastifyLimiterHandler>>;
}

/**
 * Registrations with the same options object share their limiters, as one Express middleware
 * mounted twice is one limiter: a request reached by both counts once (and the double mount is
 * reported once).
 */
const byOptions = new WeakMap<object, PluginLimiters>();

/**
 * The limiters of a registration with `options`, validated and built on first use (when the plugin
 * is registered); a ConfigError names the bad option.
 */
export function pluginLimiters(options: FastifyRateLimitOptions): PluginLimiters {
  const known = options !== null && typeof options === 'object' ? byOptions.get(options) : undefined;
  if (known !== undefined) return known;
  const { hook, rest, extra } = pluginSettings(options, ['global']);
  const global = extra.global ?? true;
  if (typeof global !== 'boolean') throw new ConfigError(`global must be true or false; got ${formatValue(global)}`);
  const limiters: PluginLimiters = { hook, options: rest, global: global ? fastifyLimiter(resolveRateLimit(rest)) : undefined, routes: new WeakMap() };
  byOptions.set(options, limiters);
  return limiters;
}

function setUp(fastify: FastifyInstance, options: FastifyRateLimitOptions): void {
  const limiters = pluginLimiters(options);
  const { hook, global } = limiters;
  decorateRequest(fastify, 'rateLimit');
  fastify.addHook('onRoute', (route) => {
    const own: unknown = route.config?.rateLimit;
    if (own === false) return;
    if (own === undefined) {
      if (global !== undefined) addRouteHook(route, hook, global);
      return;
    }
    addRouteHook(route, hook, routeHandler(own, route, limiters));
  });
  if (global !== undefined) fastify.addHook(hook, notFoundGate(global));
}

/** The handler of a route's `config.rateLimit`, one per config object and URL (a GET route and its HEAD route share it). */
function routeHandler(own: unknown, route: RouteOptions, limiters: PluginLimiters): FastifyLimiterHandler {
  const { options: pluginOptions, routes: cache } = limiters;
  const label = `${Array.isArray(route.method) ? route.method.join(',') : route.method} ${route.url}`;
  if (own === null || typeof own !== 'object' || Array.isArray(own)) {
    throw new ConfigError(`config.rateLimit of route ${label} must be an object of rateLimit options, or false; got ${formatValue(own)}`);
  }
  let byUrl = cache.get(own);
  if (byUrl === undefined) cache.set(own, (byUrl = new Map()));
  const cached = byUrl.get(route.url);
  if (cached !== undefined) return cached;
  const merged: Record<string, unknown> = { ...pluginOptions };
  const ownOptions = own as Record<string, unknown>;
  // A route's `limits` replace the plugin's limits; its `limit` or `window` alone takes the other
  // from the plugin (`{ limit: 9 }` keeps the plugin's window), as @fastify/rate-limit's max does.
  if (ownOptions.limits !== undefined) {
    delete merged.limit;
    delete merged.window;
  } else if (ownOptions.limit !== undefined || ownOptions.window !== undefined) {
    delete merged.limits;
  }
  Object.assign(merged, ownOptions);
  if (ownOptions.prefix === undefined) merged.prefix = `${(pluginOptions.prefix as string | undefined) ?? DEFAULTS.prefix}${ruleNameFromRoute(label)}:`;
  let handler: FastifyLimiterHandler;
  try {
    handler = fastifyLimiter(resolveRateLimit(merged));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`config.rateLimit of route ${label}: ${err.message}`);
    throw err;
  }
  byUrl.set(route.url, handler);
  return handler;
}

/** Adds `handler` to the route's own `hook` hooks (after those the route declares). */
export function addRouteHook(route: RouteOptions, hook: FastifyLimiterHook, handler: FastifyLimiterHandler): void {
  const existing: unknown = route[hook];
  route[hook] = (existing === undefined ? [handler] : Array.isArray(existing) ? [...existing, handler] : [existing, handler]) as never;
}

/** The plugin's limiter on the instance's not-found handler (routes get it through onRoute): requests probing for URLs count too. */
function notFoundGate(handler: FastifyLimiterHandler) {
  return function ratelockNotFoundRateLimit(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    if (!request.is404) {
      done();
      return;
    }
    handler(request, reply).then((answered) => {
      if (answered === undefined) done();
    }, done);
  };
}

/** Declares a request property once per instance tree, so every request object has the same shape. */
export function decorateRequest(fastify: FastifyInstance, name: 'rateLimit' | 'lock'): void {
  if (!fastify.hasRequestDecorator(name)) fastify.decorateRequest(name, undefined);
}

/**
 * The hook of a configured limiter: decide, expose `request.rateLimit`, then let through (with
 * quota headers), answer 429 (limited) or 503 (store failed, fail-closed); a shadow decision always
 * lets through. Errors of user
 * callbacks (including ConfigErrors for bad `limit(request)`/`cost(request)` values) reject, so
 * they take Fastify's error path.
 */
export function fastifyLimiter(config: FastifyLimiter): FastifyLimiterHandler {
  const once = new OncePerRequest(config.limiter.logger);
  return async function ratelockRateLimit(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (!once.claim(request)) return undefined;
    const pending = config.resolve(request);
    const limitRequest = isThenable(pending) ? await pending : pending;
    if (limitRequest === undefined) return undefined;
    const decided = config.limiter.decideNow(limitRequest, request, 'consume', 'fastify');
    const decision = isThenable(decided) ? await decided : decided;
    request.rateLimit = decision;
    config.onDecision?.(request, decision);
    if (!passes(decision)) {
      await refuse(config, decision, request, reply);
      return reply;
    }
    // The store failed (fail-open): we know nothing, so no quota headers and nothing to refund.
    if (decision.error !== undefined) return undefined;
    config.writeHeaders?.(reply, setHeader, decision);
    // The refund waits for the status the app produces, also after the client left (refund.ts):
    // Fastify's onResponse runs only for responses that reached the client.
    if (config.refund !== undefined) refundWhenDone(config.limiter, decision, config.refund, request, reply.raw, (predicate) => predicate(request, reply));
    return undefined;
  };
}

/** A refused request: 503 when the store failed (fail-closed), else the limited response (onLimited, then `message`). */
async function refuse(config: FastifyLimiter, decision: Decision, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (decision.error !== undefined) {
    sendAnswer(reply, STORE_UNAVAILABLE_ANSWER);
    return;
  }
  reply.header('Retry-After', String(retryAfterSeconds(decision)));
  config.writeHeaders?.(reply, setHeader, decision);
  reply.code(config.statusCode);
  if (config.onLimited !== undefined) {
    await config.onLimited(request, reply, decision);
    if (reply.sent) return;
  }
  const built = config.message(request, decision, config.statusCode);
  sendAnswer(reply, isThenable(built) ? await built : built);
}

/**
 * Sliding-window rate limiting for Fastify 5, one atomic store call per request. The decision is
 * `request.rateLimit`.
 *
 * @example
 * await fastify.register(rateLimit, { store, limit: 100, window: '1m' });      // every route, per client IP
 * fastify.post('/login', { config: { rateLimit: { limit: 5, window: '15m' } } }, login);   // this route's own limit
 * fastify.get('/health', { config: { rateLimit: false } }, health);           // not limited
 * @throws ConfigError when registered (or when a route with a bad config.rateLimit is), naming the bad option.
 */
export const rateLimit = withoutEncapsulation(rateLimitPlugin, 'ratelock-rate-limit');
