/**
 * Limit options → validated limits, parsed once at construction: either `{ limit, window }` or
 * `{ limits: [{ limit, window, name? }, ...] }`. Every error names the option path, the expected
 * range and the value received, e.g. `routes[1].limits[0].window must be ...; got "fast"`.
 *
 * A limit's name is part of its store key, so two limiters on one store and prefix share a log
 * exactly when they give a limit the same name. Default names therefore carry the quota
 * (`100-in-1m`, like express-rate-limit's draft-8 policy ids): a 100/min app-wide limiter and a
 * 5/min login limiter never add up their counts. `claimLogs` warns when two limiters still claim
 * one log with different quotas (same explicit name, or two `limit(req)` functions).
 */
import { ConfigError } from './errors.js';
import { formatValue, formatDuration, parseDuration, type Duration } from './duration.js';
import { isThenable, readOptions } from './options.js';
import type { Algorithm, Policy } from './decision.js';
import type { Logger } from './store-call.js';

/** One limit as users write it. `name` defaults to `<limit>-in-<window>` (`'100-in-1m'`, `'100-in-1m-gcra'`), or the window for a `limit(req)` function. */
export interface LimitDefinition {
  limit: number;
  window: Duration;
  name?: string | undefined;
  /** How this limit counts. @default the limiter's `algorithm` option, else `'sliding-log'` */
  algorithm?: Algorithm | undefined;
  /** GCRA only: units that may pass at once, integer 1–1e9. @default limit */
  burst?: number | undefined;
}

/**
 * The penalty box (`block` option): after `after` refusals in a row (no request allowed between
 * them, each within the limiter's longest window of the previous one) the client is refused for
 * `for`, without its limits being read or written.
 */
export interface BlockOptions {
  /** Refusals in a row that close the box, integer 1–1 000. @default 1 */
  after?: number | undefined;
  /** How long the box stays closed: ms or a duration string (`'15m'`). */
  for: Duration;
}

/** A parsed `block` option. */
export interface PenaltyBoxSettings {
  readonly after: number;
  readonly blockMs: number;
}

/** A limit whose quota may depend on the request (`rateLimit({ limit: (req) => ... })`). */
export type DynamicLimit = (req: any) => number | Promise<number>;

export interface ResolvedLimit {
  readonly name: string;
  readonly windowMs: number;
  readonly limit: number | DynamicLimit;
  /** GCRA limits only (absent = sliding log). */
  readonly algorithm?: 'gcra' | undefined;
  readonly burst?: number | undefined;
  /** Where the quota was configured (e.g. `'routes[1].limits[0].limit'`), for errors about a `limit(req)` result. */
  readonly option: string;
}

/** Largest accepted `limit`. */
export const MAX_LIMIT = 1_000_000_000;

/**
 * Largest accepted `cost` of one request. The sliding log keeps one entry per unit of cost (one
 * Redis list element, ~10 bytes), all written by the request's single atomic call: a cost of 10⁶
 * would be ~245 LPUSHes of 4096 elements blocking Redis in one script. 10 000 units bound that
 * call to a few ms and ~100 KB; express larger amounts in coarser units (e.g. KB instead of bytes).
 */
export const MAX_COST = 10_000;

const LIMIT_ITEM_FIELDS: readonly string[] = ['limit', 'window', 'name', 'algorithm', 'burst'];
const BLOCK_FIELDS: readonly string[] = ['after', 'for'];
/** Most refusals in a row a penalty box may wait for. */
export const MAX_BLOCK_AFTER = 1_000;
/** Names go into store keys and `RateLimit-Policy` headers: short, no spaces, quotes or braces. */
const LIMIT_NAME_PATTERN = /^[A-Za-z0-9_.:/@-]{1,64}$/;

/** Joins an option path: `optionPath('routes[1]', 'limit')` → `'routes[1].limit'`, `optionPath('', 'limit')` → `'limit'`. */
export function optionPath(path: string, option: string): string {
  return path === '' ? option : `${path}.${option}`;
}

function validateInteger(value: unknown, option: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${option} must be an integer from 1 to ${max}; got ${formatValue(value)}`);
  }
  return value;
}

/** A quota: integer from 1 to MAX_LIMIT (1e9), else a ConfigError naming `option`. */
export function validateLimitValue(value: unknown, option: string): number {
  return validateInteger(value, option, MAX_LIMIT);
}

/**
 * A request's cost: integer from 1 to MAX_COST (10 000, see there why), else a ConfigError naming
 * `option` (so a negative cost can never act as a refund). A cost above a limit is valid: such a
 * request is always blocked.
 */
export function validateCost(value: unknown, option: string): number {
  return validateInteger(value, option, MAX_COST);
}

/**
 * Default name of a limit: `'100-in-1m'` for a fixed quota, the window (`'1m'`) for a `limit(req)`
 * function; GCRA limits end in `-gcra`, so a log and a GCRA limit of the same quota never share a key.
 */
function defaultLimitName(limit: number | DynamicLimit, windowMs: number, algorithm: Algorithm): string {
  const name = typeof limit === 'number' ? `${limit}-in-${formatDuration(windowMs)}` : formatDuration(windowMs);
  return algorithm === 'gcra' ? `${name}-gcra` : name;
}

/** An `algorithm` option: `'sliding-log'` or `'gcra'` (`fallback` when undefined). */
export function validateAlgorithm(value: unknown, option: string, fallback: Algorithm = 'sliding-log'): Algorithm {
  if (value === undefined) return fallback;
  if (value === 'sliding-log' || value === 'gcra') return value;
  throw new ConfigError(`${option} must be 'sliding-log' (exact count of the last window) or 'gcra' (even rate with a burst); got ${formatValue(value)}`);
}

/** A `block` option: `{ after?, for }`, or undefined when not given. */
export function resolveBlock(value: unknown, option: string): PenaltyBoxSettings | undefined {
  if (value === undefined) return undefined;
  const defined = readOptions(value, BLOCK_FIELDS, option, "{ after: 5, for: '15m' }", 'fields');
  if (defined.for === undefined) throw new ConfigError(`${option}.for is required (how long the client stays blocked, e.g. '15m'); got ${formatValue(value)}`);
  const after = defined.after === undefined ? 1 : validateInteger(defined.after, `${option}.after`, MAX_BLOCK_AFTER);
  return { after, blockMs: parseDuration(defined.for, `${option}.for`) };
}

/** A `burst` option: GCRA only, an integer 1–1e9; undefined when absent. */
function resolveBurst(value: unknown, option: string, algorithm: Algorithm): number | undefined {
  if (value === undefined) return undefined;
  if (algorithm !== 'gcra') throw new ConfigError(`${option} applies to algorithm 'gcra' only; got burst ${formatValue(value)} on a '${algorithm}' limit`);
  return validateLimitValue(value, option);
}

/** The algorithm fields of a resolved limit or policy: none for a sliding log. */
function algorithmFields(algorithm: Algorithm, burst: number | undefined): { algorithm?: 'gcra'; burst?: number } {
  if (algorithm !== 'gcra') return {};
  return burst === undefined ? { algorithm } : { algorithm, burst };
}

/**
 * Parses `{ limit, window }` or `{ limits }` of `input` (other keys are ignored: the caller checks
 * for unknown options). `path` prefixes option names in errors (`''` at top level).
 * Function limits are accepted only with `allowDynamic`.
 */
export function resolveLimits(
  input: { limit?: unknown; window?: unknown; limits?: unknown; burst?: unknown },
  path: string,
  options: { allowDynamic?: boolean; algorithm?: Algorithm } = {},
): ResolvedLimit[] {
  const allowDynamic = options.allowDynamic ?? false;
  const algorithm = options.algorithm ?? 'sliding-log';
  const hasSingle = input.limit !== undefined || input.window !== undefined;
  if (input.limits !== undefined) {
    if (hasSingle) {
      throw new ConfigError(
        `${optionPath(path, 'limits')} cannot be combined with ${optionPath(path, 'limit')}/${optionPath(path, 'window')}: ` +
          `use either { limit, window } or { limits: [...] }; got limit ${formatValue(input.limit)}, window ${formatValue(input.window)}`,
      );
    }
    if (input.burst !== undefined) {
      throw new ConfigError(`${optionPath(path, 'burst')} goes on each GCRA limit of ${optionPath(path, 'limits')}; got burst ${formatValue(input.burst)}`);
    }
    return resolveLimitList(input.limits, optionPath(path, 'limits'), allowDynamic, algorithm);
  }
  if (input.limit === undefined || input.window === undefined) {
    throw new ConfigError(
      `${optionPath(path, 'limit')} and ${optionPath(path, 'window')} are both required (or ${optionPath(path, 'limits')}: [{ limit, window }]); ` +
        `got limit ${formatValue(input.limit)}, window ${formatValue(input.window)}`,
    );
  }
  const windowMs = parseDuration(input.window, optionPath(path, 'window'));
  const option = optionPath(path, 'limit');
  const limit = resolveQuota(input.limit, option, allowDynamic);
  const burst = resolveBurst(input.burst, optionPath(path, 'burst'), algorithm);
  return [{ name: defaultLimitName(limit, windowMs, algorithm), windowMs, limit, option, ...algorithmFields(algorithm, burst) }];
}

function resolveLimitList(list: unknown, path: string, allowDynamic: boolean, defaultAlgorithm: Algorithm): ResolvedLimit[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(`${path} must be a non-empty array of { limit, window, name? }; got ${formatValue(list)}`);
  }
  const resolved: ResolvedLimit[] = [];
  const indexByName = new Map<string, number>();
  list.forEach((item: unknown, index) => {
    const itemPath = `${path}[${index}]`;
    const definition = readOptions(item, LIMIT_ITEM_FIELDS, itemPath, '{ limit, window, name?, algorithm?, burst? }', 'fields');
    const limit = resolveQuota(definition.limit, `${itemPath}.limit`, allowDynamic);
    const windowMs = parseDuration(definition.window, `${itemPath}.window`);
    const algorithm = validateAlgorithm(definition.algorithm, `${itemPath}.algorithm`, defaultAlgorithm);
    const burst = resolveBurst(definition.burst, `${itemPath}.burst`, algorithm);
    const name = definition.name === undefined ? defaultLimitName(limit, windowMs, algorithm) : validateLimitName(definition.name, `${itemPath}.name`);
    const previous = indexByName.get(name);
    if (previous !== undefined) {
      throw new ConfigError(
        `${itemPath}.name must differ from ${path}[${previous}]'s: both are named ${formatValue(name)} ` +
          `(unless "name" is given, a limit is named <limit>-in-<window>, or after its window when its limit is a function; give such limits distinct names)`,
      );
    }
    indexByName.set(name, index);
    resolved.push({ name, windowMs, limit, option: `${itemPath}.limit`, ...algorithmFields(algorithm, burst) });
  });
  return resolved;
}

function resolveQuota(value: unknown, option: string, allowDynamic: boolean): number | DynamicLimit {
  if (allowDynamic && typeof value === 'function') return value as DynamicLimit;
  if (typeof value === 'function') {
    throw new ConfigError(`${option} must be an integer from 1 to ${MAX_LIMIT} here (a function limit needs a request); got a function`);
  }
  return validateLimitValue(value, option);
}

/** A limit name: 1–64 characters from letters, digits and `_ . : / @ -`. */
export function validateLimitName(value: unknown, option: string): string {
  if (typeof value !== 'string' || !LIMIT_NAME_PATTERN.test(value)) {
    throw new ConfigError(`${option} must be 1 to 64 characters from letters, digits and _ . : / @ -; got ${formatValue(value)}`);
  }
  return value;
}

/** The policies, built once, when no limit depends on the request; `undefined` otherwise. */
export function staticPolicies(limits: readonly ResolvedLimit[]): readonly Policy[] | undefined {
  const policies: Policy[] = [];
  for (const { name, windowMs, limit, algorithm, burst } of limits) {
    if (typeof limit !== 'number') return undefined;
    policies.push(Object.freeze({ name, limit, windowMs, ...algorithmFields(algorithm ?? 'sliding-log', burst) }));
  }
  return Object.freeze(policies);
}

/**
 * The policies for one request: static limits as they are, dynamic ones evaluated and validated
 * (a bad value from a `limit(req)` callback is a ConfigError naming the limit's option, e.g.
 * `'limit'` or `'limits[1].limit'`). Returns a promise only when a callback does.
 */
export function policiesFor(limits: readonly ResolvedLimit[], req: unknown): Policy[] | Promise<Policy[]> {
  const quotas = limits.map((limit) => (typeof limit.limit === 'number' ? limit.limit : limit.limit(req)));
  if (quotas.some(isThenable)) return Promise.all(quotas).then((settled) => toPolicies(limits, settled));
  return toPolicies(limits, quotas);
}

function toPolicies(limits: readonly ResolvedLimit[], quotas: readonly unknown[]): Policy[] {
  return limits.map(({ name, windowMs, limit, option, algorithm, burst }, index) => ({
    name,
    windowMs,
    limit: typeof limit === 'number' ? limit : validateLimitValue(quotas[index], option),
    ...algorithmFields(algorithm ?? 'sliding-log', burst),
  }));
}

/** Per store: the quota each log (prefix + limit name) was configured with, and whether a clash was reported. */
const claims = new WeakMap<object, Map<string, { quota: string; warned: boolean }>>();
/** Each `limit(req)` function as a distinct quota: two different functions are two different limits. */
const dynamicQuotaIds = new WeakMap<DynamicLimit, number>();
let nextDynamicQuotaId = 1;

function describeQuota(limit: number | DynamicLimit, windowMs: number): string {
  if (typeof limit === 'number') return `${limit} per ${formatDuration(windowMs)}`;
  let id = dynamicQuotaIds.get(limit);
  if (id === undefined) {
    id = nextDynamicQuotaId++;
    dynamicQuotaIds.set(limit, id);
  }
  return `limit(req) function #${id} per ${formatDuration(windowMs)}`;
}

/**
 * Records, at construction, that a limiter uses these logs (`<prefix>{…}:<name>`) on `store`; warns
 * once per log through `logger` when another limiter already claimed it with a different quota or
 * window, since both would then count in (and be limited by) one log.
 */
export function claimLogs(store: object, prefix: string, limits: readonly ResolvedLimit[], logger: Logger): void {
  let logs = claims.get(store);
  if (logs === undefined) claims.set(store, (logs = new Map()));
  for (const { name, windowMs, limit, algorithm, burst } of limits) {
    const log = `${prefix}{…}:${name}`;
    const quota = describeQuota(limit, windowMs) + (algorithm === 'gcra' ? ` (GCRA, burst ${burst ?? 'limit'})` : '');
    const claim = logs.get(log);
    if (claim === undefined) {
      logs.set(log, { quota, warned: false });
    } else if (claim.quota !== quota && !claim.warned) {
      claim.warned = true;
      logger.warn(
        `[ratelock] two limiters on one store use the same log "${log}" with different limits (${claim.quota}; ${quota}), ` +
          'so each counts the other\'s requests. Give one of them another "prefix" or limit "name".',
      );
    }
  }
}
