/**
 * Key extractors: small functions `(req) => string | undefined` that work on an Express `req` and
 * on a Koa `ctx` alike (both have `.ip`, `.headers`, `.query`, `.app`).
 *
 * Outputs are namespaced (`ip:`, `header:<name>:`, `user:`, `query:<name>:`) so that, say, an API
 * key equal to an IP address can never share that IP's bucket. Request input never makes an
 * extractor throw: absent, empty, repeated (array) or non-string values yield `undefined` or the
 * first value; long or odd text is fine because store keys hash ids (core/store-keys.ts).
 */
import { ConfigError, DEFAULTS, formatValue, isThenable, readOptions, type Logger } from '../core/index.js';
import { ipKeyPart } from './ip-address.js';
import { checkProxySettings } from './proxy-warnings.js';
import { requestView } from './request-view.js';

/**
 * What an extractor may return: a string, a number, or a list of strings (an Express 5 wildcard
 * parameter such as `req.params.path`, joined with '/'). `undefined`, `null`, `''` or `[]` means
 * "no key here".
 */
export type KeyValue = string | number | readonly string[] | undefined | null;

/** Works on an Express `req` and on a Koa `ctx`. */
export type KeyExtractor<Req = any> = (req: Req) => KeyValue | Promise<KeyValue>;

export interface IpKeyOptions {
  /**
   * IPv6 clients are keyed by this many leading bits (32–64), so one client cannot rotate through
   * the addresses delegated to it. @default 56 (`DEFAULTS.ipv6Subnet`)
   */
  ipv6Subnet?: number | undefined;
  /** Where the once-per-process proxy-setting warnings go. @default console */
  logger?: Logger | undefined;
}

const IP_KEY_OPTION_NAMES = ['ipv6Subnet', 'logger'] as const;

/** Key of requests whose socket has no address any more (the connection is already gone). */
const UNKNOWN_ADDRESS_KEY = 'ip:unknown';

/**
 * The client address as the framework sees it: Express `req.ip` (honours `trust proxy`), Koa
 * `ctx.ip` (honours `app.proxy`), Fastify `request.ip` (honours `trustProxy`), the adapter's view
 * (Hono, see request-view.ts), else the socket's address. Never reads X-Forwarded-For itself.
 */
function clientAddress(req: any): unknown {
  const view = requestView(req);
  if (view !== undefined) return view.address(req);
  const ip = req.ip;
  if (typeof ip === 'string' && ip.length > 0) return ip;
  return req.socket?.remoteAddress ?? req.req?.socket?.remoteAddress;
}

function ip(options: IpKeyOptions = {}): KeyExtractor {
  const defined = readOptions(options, IP_KEY_OPTION_NAMES, 'keys.ip()', '{ ipv6Subnet: 56 }');
  const subnet = defined.ipv6Subnet === undefined ? DEFAULTS.ipv6Subnet : defined.ipv6Subnet;
  if (typeof subnet !== 'number' || !Number.isInteger(subnet) || subnet < 32 || subnet > 64) {
    throw new ConfigError(`keys.ip() option ipv6Subnet must be an integer from 32 to 64; got ${formatValue(defined.ipv6Subnet)}`);
  }
  const logger = (defined.logger ?? console) as Logger;
  if (typeof logger?.warn !== 'function') {
    throw new ConfigError(`keys.ip() option logger must have a warn(message) method; got ${formatValue(defined.logger)}`);
  }
  return (req: any) => {
    checkProxySettings(req, logger);
    const address = clientAddress(req);
    if (typeof address !== 'string' || address.length === 0) return UNKNOWN_ADDRESS_KEY;
    return `ip:${ipKeyPart(address, subnet)}`;
  };
}

/** Header names are HTTP tokens (RFC 9110 §5.1). */
const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `true` when `name` is a valid HTTP header name (an RFC 9110 token). */
export function isHeaderName(name: unknown): name is string {
  return typeof name === 'string' && HEADER_NAME_PATTERN.test(name);
}

function header(name: string): KeyExtractor {
  if (!isHeaderName(name)) {
    throw new ConfigError(`keys.header() name must be an HTTP header name such as 'x-api-key'; got ${formatValue(name)}`);
  }
  const lower = name.toLowerCase();
  const namespace = `header:${lower}:`;
  return (req: any) => {
    const view = requestView(req);
    if (view !== undefined) {
      const viewed = view.header(req, lower);
      return viewed === undefined || viewed === '' ? undefined : namespace + viewed;
    }
    let value: unknown = req.headers?.[lower];
    // Node joins repeated headers with ', '; the first one is what the app's own code would trust.
    if (typeof value === 'string' && value.includes(',')) {
      // The Node request: Express's `req` itself, Koa's `ctx.req`, Fastify's `request.raw`.
      const distinct = (req.raw ?? req.req ?? req).headersDistinct?.[lower];
      if (Array.isArray(distinct) && distinct.length > 1) value = distinct[0];
    }
    const text = firstString(value);
    return text === undefined ? undefined : namespace + text;
  };
}

/** What a `keys.user()` lookup may return; `undefined`, `null` and `''` mean anonymous. */
export type UserId = string | number | bigint | undefined | null;

function user(fn: (req: any) => UserId | Promise<UserId>): KeyExtractor {
  if (typeof fn !== 'function') {
    throw new ConfigError(`keys.user() argument must be a function (req) => user id; got ${formatValue(fn)}`);
  }
  return (req: any) => {
    const id: unknown = fn(req);
    // An async lookup must not turn into the shared id '[object Promise]'.
    if (isThenable(id)) return Promise.resolve(id).then(userKey);
    return userKey(id);
  };
}

function userKey(id: unknown): string | undefined {
  if (typeof id === 'string') return id.length > 0 ? `user:${id}` : undefined;
  if (typeof id === 'number' && Number.isFinite(id)) return `user:${id}`;
  if (typeof id === 'bigint') return `user:${id}`;
  return undefined;
}

function query(name: string): KeyExtractor {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ConfigError(`keys.query() name must be a non-empty string; got ${formatValue(name)}`);
  }
  const namespace = `query:${name}:`;
  return (req: any) => {
    const view = requestView(req);
    if (view !== undefined) {
      const viewed = view.query(req, name);
      return viewed === undefined || viewed === '' ? undefined : namespace + viewed;
    }
    const parsed = req.query;
    if (parsed === null || typeof parsed !== 'object') return undefined;
    // Own properties only: '?constructor=x' must not reach Object.prototype.
    const value: unknown = Object.prototype.hasOwnProperty.call(parsed, name) ? parsed[name] : undefined;
    const text = firstString(value);
    return text === undefined ? undefined : namespace + text;
  };
}

function all(...parts: KeyExtractor[]): KeyExtractor {
  if (parts.length === 0) throw new ConfigError('keys.all() needs at least one key extractor; got none');
  parts.forEach((part, index) => {
    if (typeof part !== 'function') {
      throw new ConfigError(`keys.all() argument ${index + 1} must be a key extractor function; got ${formatValue(part)}`);
    }
  });
  return (req: any) => {
    const values: (string | Promise<KeyValue>)[] = [];
    let pending = false;
    try {
      for (const part of parts) {
        const value = part(req);
        if (isThenable(value)) {
          pending = true;
          values.push(value);
          continue;
        }
        const key = toKey(value, `keys.all() part ${values.length + 1}`);
        if (key === undefined) return abandon(values);
        values.push(key);
      }
    } catch (err) {
      abandon(values); // the request fails with `err`; an async part before it may still reject
      throw err;
    }
    if (!pending) return combine(values as string[]);
    return Promise.all(values).then((settled) => {
      const keyParts = settled.map((value, index) => toKey(value, `keys.all() part ${index + 1}`));
      return keyParts.every(isNonEmptyString) ? combine(keyParts as string[]) : undefined;
    });
  };
}

/** Gives up on a combination; parts still pending may not fail later as unhandled rejections. */
function abandon(values: readonly unknown[]): undefined {
  for (const value of values) if (isThenable(value)) Promise.resolve(value).catch(ignore);
  return undefined;
}

function ignore(): void {}

/** Length-prefixed, so no two different lists of parts give the same key. */
function combine(parts: readonly string[]): string {
  let key = 'all:';
  for (const part of parts) key += `${part.length}:${part}`;
  return key;
}

/**
 * An extractor's value as a key: a non-empty string as is, a finite number as its text, a list of
 * strings joined with '/' (Express 5 wildcard parameters). Anything else (undefined, null, '',
 * objects) means "no key here": an object must not become the shared key '[object Object]'.
 */
function asKey(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (Array.isArray(value) && value.length > 0 && value.every((part) => typeof part === 'string')) return value.join('/');
  return undefined;
}

/**
 * An extractor's value as a key, or `undefined` for "no key here" (`undefined`, `null`, `''`, `[]`).
 * Any other value that is not a key (an object, a boolean, NaN, a list with non-strings) is a bug in
 * the extractor: a ConfigError naming `option`, answered 500 like a bad `limit(req)` value, never a
 * silent fall back to another key.
 */
export function toKey(value: unknown, option: string): string | undefined {
  const key = asKey(value);
  if (key !== undefined || value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) return key;
  throw new ConfigError(
    `${option} must return a string, a finite number or a list of strings (undefined, null or '' for "no key"); got ${formatValue(value)}`,
  );
}

/** The first value of a header or query parameter: strings as is, arrays → their first string. */
function firstString(value: unknown): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first.length > 0 ? first : undefined;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/**
 * Key extractors. A list of them means "the first that yields a value"; when none yields, the
 * request is keyed by its IP (see `extractKey`).
 */
export const keys = {
  /**
   * `'ip:<address>'`, IPv6 as `'ip:<prefix>/<ipv6Subnet>'` (see `ipKeyPart` for the normalisation),
   * from the framework's `req.ip` / `ctx.ip`. A request with no address at all (its socket already
   * closed) is keyed `'ip:unknown'`. Warns once per process about permissive or missing proxy trust.
   */
  ip,
  /** `'header:<lower-case name>:<value>'` of the first such header; `undefined` when absent or empty. */
  header,
  /** `'user:<id>'` from `fn(req)` (string, finite number or bigint; may be async); `undefined` when it yields nothing. */
  user,
  /** `'query:<name>:<value>'` of the first such query parameter; `undefined` when absent, empty or not a string. */
  query,
  /** Combines parts (e.g. user *and* route); yields only when every part yields. */
  all,
};
