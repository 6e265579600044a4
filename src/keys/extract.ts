/**
 * Turning a key spec (one extractor or a list) into the request's client key.
 *
 * If no extractor yields a key, the request is keyed by its IP (`keys.ip()` with the default
 * /56 IPv6 subnet, warning through the limiter's logger): anonymous requests never share one
 * global bucket that a single client could drain for everyone.
 */
import { ConfigError, formatValue, isThenable, type Awaitable, type Logger } from '../core/index.js';
import { keys, toKey, type KeyExtractor } from './extractors.js';

/** One extractor, or a list of them meaning "the first that yields a value". */
export type KeySpec<Req = any> = KeyExtractor<Req> | readonly KeyExtractor<Req>[];

/** Resolves a request to its key, synchronously when every extractor it ran was synchronous. */
export type KeyResolver<Req = any> = (req: Req) => string | Promise<string>;

export interface KeySpecOptions {
  /** Where the IP fallback's proxy warnings go: the limiter's configured logger. @default console */
  readonly logger?: Logger | undefined;
  /** The option the spec came from, named in the error for an extractor value that is not a key. @default 'key' */
  readonly option?: string | undefined;
}

type IpFallback = (req: unknown) => string;

const consoleFallback = keys.ip() as IpFallback;
/** One IP fallback per logger, so resolving a key never builds an extractor. */
const fallbacks = new WeakMap<Logger, IpFallback>();

function ipFallback(logger: Logger | undefined): IpFallback {
  if (logger === undefined) return consoleFallback;
  let fallback = fallbacks.get(logger);
  if (fallback === undefined) {
    fallback = keys.ip({ logger }) as IpFallback;
    fallbacks.set(logger, fallback);
  }
  return fallback;
}

/**
 * Compiles a validated spec once into a resolver for the hot path. The resolver returns a string
 * when every extractor it ran answered synchronously, else a promise. An extractor that throws
 * (user code) makes it throw or reject: that is a bug to surface, not a reason to pick another key.
 */
export function compileKeySpec<Req = any>(spec: KeySpec<Req>, options: KeySpecOptions = {}): KeyResolver<Req> {
  const fallback = ipFallback(options.logger);
  const option = options.option ?? 'key';
  if (typeof spec === 'function') return (req: Req) => resolveOne(spec, req, fallback, option);
  const extractors = spec;
  return (req: Req) => resolveFromList(extractors, req, 0, fallback, option);
}

function resolveOne<Req>(extractor: KeyExtractor<Req>, req: Req, fallback: IpFallback, option: string): string | Promise<string> {
  const value = extractor(req);
  if (isThenable(value)) return Promise.resolve(value).then((settled) => toKey(settled, option) ?? fallback(req));
  return toKey(value, option) ?? fallback(req);
}

function resolveFromList<Req>(extractors: readonly KeyExtractor<Req>[], req: Req, start: number, fallback: IpFallback, option: string): string | Promise<string> {
  for (let i = start; i < extractors.length; i++) {
    const value = extractors[i]!(req);
    if (isThenable(value)) {
      return Promise.resolve(value).then((settled) => toKey(settled, `${option}[${i}]`) ?? resolveFromList(extractors, req, i + 1, fallback, option));
    }
    const key = toKey(value, `${option}[${i}]`);
    if (key !== undefined) return key;
  }
  return fallback(req);
}

/**
 * Compiles a validated spec into a resolver of the first key its extractors yield, or `undefined`
 * when none does: no IP fallback (a lock key that nobody gave is refused, not guessed). A value
 * that is no key at all is a ConfigError naming `option`, as with `compileKeySpec`.
 */
export function compileFirstKey<Req = any>(spec: KeySpec<Req>, option: string): (req: Req) => Awaitable<string | undefined> {
  const extractors = typeof spec === 'function' ? [spec] : spec;
  const names = extractors.length === 1 ? [option] : extractors.map((_, index) => `${option}[${index}]`);
  const from = (req: Req, start: number): Awaitable<string | undefined> => {
    for (let i = start; i < extractors.length; i++) {
      const value = extractors[i]!(req);
      if (isThenable(value)) return Promise.resolve(value).then((settled) => toKey(settled, names[i]!) ?? from(req, i + 1));
      const key = toKey(value, names[i]!);
      if (key !== undefined) return key;
    }
    return undefined;
  };
  return (req) => from(req, 0);
}

/** Checks a `key` option: an extractor function or a non-empty array of them. */
export function validateKeySpec(spec: unknown, option: string): KeySpec {
  if (typeof spec === 'function') return spec as KeyExtractor;
  if (!Array.isArray(spec) || spec.length === 0) {
    throw new ConfigError(`${option} must be a key extractor (req) => string | undefined, or a non-empty array of them; got ${formatValue(spec)}`);
  }
  spec.forEach((extractor, index) => {
    if (typeof extractor !== 'function') {
      throw new ConfigError(`${option}[${index}] must be a key extractor function (req) => string | undefined; got ${formatValue(extractor)}`);
    }
  });
  return Object.freeze([...spec]) as readonly KeyExtractor[];
}
