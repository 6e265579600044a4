/**
 * Route patterns of `rateLimitRoutes`: `'[METHOD ]PATH'`, parsed once at startup into segments
 * that are matched without regular expressions.
 *
 * Matching rules (chosen so a client cannot step around a limit the app's router would still apply):
 * - PATH is exact (`/login`), may have `:param` segments (one non-empty segment each), and may end
 *   in a `*` segment: `/api/*` matches `/api`, `/api/` and everything below `/api/`, not `/apix`.
 *   `*` or `/*` alone matches every path.
 * - Case-insensitive, and empty segments are ignored (`//Login/` is `/login`), as Express and
 *   @koa/router route by default; a path with empty segments is also read with them kept, where a
 *   `:param` matches one (Fastify runs `/u/:id` for `/u/`: see RouteMatcher.match).
 * - METHOD is optional (any method); a `GET` rule also applies to `HEAD`, which Express answers
 *   with the GET handler.
 * - The path is the whole request path without the query string (Express `req.baseUrl +
 *   req.path`, Koa `ctx.path`, or `ctx.originalUrl` under koa-mount: see each adapter's
 *   routes.ts), as is and percent-decoded: some routers match one, some the other (see routingPaths).
 */
import { ConfigError, formatValue } from '../../core/index.js';
import { METHODS } from 'node:http';

/** A `:param` segment: matches any one segment. */
export const PARAM = null;

export interface RoutePattern {
  /** Upper-case method, or `undefined` for any. */
  readonly method: string | undefined;
  /** Literal segments (lower-case) and PARAM placeholders, before any `*`. */
  readonly segments: readonly (string | typeof PARAM)[];
  /** Ends in `*`: also matches longer paths. */
  readonly prefix: boolean;
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

/** Parses a route such as `'POST /login'`, `'/users/:id'` or `'GET /api/*'`; errors name `option`. */
export function parseRoute(value: unknown, option: string): RoutePattern {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError(`${option} must be a string '[METHOD ]PATH' such as 'POST /login' or '/api/*'; got ${formatValue(value)}`);
  }
  const text = value.trim();
  const space = text.indexOf(' ');
  const method = space === -1 ? undefined : text.slice(0, space).toUpperCase();
  const path = space === -1 ? text : text.slice(space + 1).trim();
  if (method !== undefined && !KNOWN_METHODS.has(method)) {
    throw new ConfigError(`${option} has an unknown HTTP method ${formatValue(text.slice(0, space))}; expected one of GET, POST, PUT, PATCH, DELETE, ... or no method (any); got ${formatValue(value)}`);
  }
  if (/[?#]/.test(path)) {
    throw new ConfigError(`${option} path is matched without its query string or fragment, so a '?' or '#' in it never matches; got ${formatValue(value)}`);
  }
  if (path !== '*' && !path.startsWith('/')) {
    throw new ConfigError(`${option} path must start with '/' (or be '*'), e.g. 'GET /search'; got ${formatValue(value)}`);
  }
  const parts = splitPath(path);
  const prefix = parts[parts.length - 1] === '*';
  if (prefix) parts.pop();
  const segments = parts.map((part) => {
    if (part.includes('*')) {
      throw new ConfigError(`${option} may use '*' only as its whole last segment ('/api/*'); got ${formatValue(value)}`);
    }
    if (part.startsWith(':')) {
      if (part.length === 1) throw new ConfigError(`${option} has a ':' segment without a parameter name; got ${formatValue(value)}`);
      return PARAM;
    }
    return part;
  });
  return { method, segments, prefix };
}

/** Lower-case, non-empty segments of a path (`'//A/b/'` → `['a', 'b']`). */
export function splitPath(path: string): string[] {
  const segments: string[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path.charCodeAt(i) === 47 /* '/' */) {
      if (i > start) segments.push(path.slice(start, i).toLowerCase());
      start = i + 1;
    }
  }
  return segments;
}

/** Whether `pattern` applies to a request (`method` upper-case, `segments` from splitPath). */
export function matchesRoute(pattern: RoutePattern, method: string, segments: readonly string[]): boolean {
  if (pattern.method !== undefined && pattern.method !== method && !(pattern.method === 'GET' && method === 'HEAD')) return false;
  const count = pattern.segments.length;
  if (pattern.prefix ? segments.length < count : segments.length !== count) return false;
  for (let i = 0; i < count; i++) {
    const expected = pattern.segments[i];
    if (expected !== PARAM && expected !== segments[i]) return false;
  }
  return true;
}
