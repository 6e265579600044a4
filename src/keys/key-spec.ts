/**
 * Key specs of `rateLimitRoutes` rules, JSON-friendly: `'ip'`, `'ip/<32–64>'` (IPv6 prefix bits),
 * `'header:<name>'`, `'user'` (the table's `user` option), `'query:<name>'`, or an extractor
 * function; a list means the first that yields a value. Compiled once to a KeyResolver; equal
 * specs share one resolver, so a request computes each distinct key once.
 */
import { ConfigError, formatValue, type Logger } from '../core/index.js';
import { compileKeySpec, type KeyResolver } from './extract.js';
import { isHeaderName, keys, type KeyExtractor } from './extractors.js';

/** One key spec item as written in a route table. */
export type RouteKeySpecItem<Req> = string | KeyExtractor<Req>;
/** A rule's `key`: one item or a list (the first that yields a value). */
export type RouteKeySpec<Req> = RouteKeySpecItem<Req> | readonly RouteKeySpecItem<Req>[];

export interface KeySpecContext<Req> {
  /** The table's `user` option: what the `'user'` spec means. */
  readonly user: ((req: Req) => string | number | undefined | null | Promise<string | number | undefined | null>) | undefined;
  /** Receives the once-per-process proxy warnings of keys.ip() and of the IP fallback. */
  readonly logger: Logger;
}

const FORMS = `'ip', 'ip/<32-64>', 'header:<name>', 'user', 'query:<name>' or a key extractor function`;

/** Compiles route key specs, sharing one resolver per distinct string spec. */
export class RouteKeyCompiler<Req> {
  readonly #context: KeySpecContext<Req>;
  readonly #extractors = new Map<string, KeyExtractor<Req>>();
  readonly #resolvers = new Map<string, KeyResolver<Req>>();

  constructor(context: KeySpecContext<Req>) {
    this.#context = context;
  }

  /** The resolver of `spec`; a bad spec is a ConfigError naming `option` (e.g. `routes[2].key`). */
  compile(spec: unknown, option: string): KeyResolver<Req> {
    const items = Array.isArray(spec) ? spec : [spec];
    if (items.length === 0) throw new ConfigError(`${option} must be ${FORMS}, or a non-empty list of them; got []`);
    const extractors = items.map((item: unknown, index) => this.#extractor(item, Array.isArray(spec) ? `${option}[${index}]` : option));
    // Only all-string specs can be shared: two functions are never known to be equal.
    const cacheKey = items.every((item) => typeof item === 'string') ? JSON.stringify(items) : undefined;
    const cached = cacheKey === undefined ? undefined : this.#resolvers.get(cacheKey);
    if (cached !== undefined) return cached;
    const resolver = compileKeySpec<Req>(extractors.length === 1 ? extractors[0]! : extractors, { logger: this.#context.logger, option });
    if (cacheKey !== undefined) this.#resolvers.set(cacheKey, resolver);
    return resolver;
  }

  #extractor(item: unknown, option: string): KeyExtractor<Req> {
    if (typeof item === 'function') return item as KeyExtractor<Req>;
    if (typeof item !== 'string') throw new ConfigError(`${option} must be ${FORMS}; got ${formatValue(item)}`);
    let extractor = this.#extractors.get(item);
    if (extractor === undefined) {
      extractor = this.#parse(item, option);
      this.#extractors.set(item, extractor);
    }
    return extractor;
  }

  #parse(spec: string, option: string): KeyExtractor<Req> {
    const { logger, user } = this.#context;
    if (spec === 'ip') return keys.ip({ logger });
    if (spec === 'user') {
      if (user === undefined) {
        throw new ConfigError(`${option} is 'user' but the table has no user option; add user: (req) => req.user?.id to rateLimitRoutes()`);
      }
      return keys.user(user as (req: unknown) => string | number | undefined | null);
    }
    const colon = spec.indexOf(':');
    const slash = spec.indexOf('/');
    if (slash !== -1 && spec.slice(0, slash) === 'ip') {
      const text = spec.slice(slash + 1);
      const bits = Number(text);
      if (!Number.isInteger(bits) || String(bits) !== text || bits < 32 || bits > 64) {
        throw new ConfigError(`${option} 'ip/<bits>' needs IPv6 prefix bits from 32 to 64 (e.g. 'ip/64'); got ${formatValue(spec)}`);
      }
      return keys.ip({ ipv6Subnet: bits, logger });
    }
    if (colon !== -1) {
      const kind = spec.slice(0, colon);
      const name = spec.slice(colon + 1);
      if (kind === 'header') {
        if (!isHeaderName(name)) throw new ConfigError(`${option} 'header:<name>' needs an HTTP header name (e.g. 'header:x-api-key'); got ${formatValue(spec)}`);
        return keys.header(name);
      }
      if (kind === 'query') {
        if (name === '') throw new ConfigError(`${option} 'query:<name>' needs a parameter name (e.g. 'query:apiKey'); got ${formatValue(spec)}`);
        return keys.query(name);
      }
    }
    throw new ConfigError(`${option} must be ${FORMS}; got ${formatValue(spec)}`);
  }
}
