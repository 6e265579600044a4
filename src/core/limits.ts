/**
 * Limit options → validated limits, parsed once at construction: either `{ limit, window }` or
 * `{ limits: [{ limit, window, name? }, ...] }`. Every error names the option path, the expected
 * range and the value received, e.g. `routes[1].limits[0].window must be ...; got "fast"`.
 */
import { ConfigError } from './errors.js';
import { describe, formatDuration, parseDuration, type Duration } from './duration.js';
import type { Policy } from './decision.js';

/** One limit as users write it. `name` defaults to the window formatted (`'1m'`). */
export interface LimitDefinition {
  limit: number;
  window: Duration;
  name?: string;
}

/** A limit whose quota may depend on the request (`rateLimit({ limit: (req) => ... })`). */
export type DynamicLimit = (req: any) => number | Promise<number>;

export interface ResolvedLimit {
  readonly name: string;
  readonly windowMs: number;
  readonly limit: number | DynamicLimit;
  /** Where the quota was configured (e.g. `'routes[1].limits[0].limit'`), for errors about a `limit(req)` result. */
  readonly option?: string;
}

/** Largest accepted `limit` and `cost`. */
export const MAX_LIMIT = 1_000_000_000;

const LIMIT_ITEM_OPTIONS = ['limit', 'window', 'name'] as const;
/** Names go into store keys and `RateLimit-Policy` headers: short, no spaces, quotes or braces. */
const LIMIT_NAME_PATTERN = /^[A-Za-z0-9_.:/@-]{1,64}$/;

/** Joins an option path: `optionPath('routes[1]', 'limit')` → `'routes[1].limit'`, `optionPath('', 'limit')` → `'limit'`. */
export function optionPath(path: string, option: string): string {
  return path === '' ? option : `${path}.${option}`;
}

/** A quota: integer from 1 to 1e9, else a ConfigError naming `option`. */
export function validateLimitValue(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new ConfigError(`${option} must be an integer from 1 to ${MAX_LIMIT}; got ${describe(value)}`);
  }
  return value;
}

/**
 * A request's cost: integer from 1 to 1e9, else a ConfigError naming `option` (so a negative cost
 * can never act as a refund). A cost above a limit is valid: such a request is always blocked.
 */
export function validateCost(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new ConfigError(`${option} must be an integer from 1 to ${MAX_LIMIT}; got ${describe(value)}`);
  }
  return value;
}

/**
 * Parses `{ limit, window }` or `{ limits }` of `input` (other keys are ignored: the caller checks
 * for unknown options). `path` prefixes option names in errors (`''` at top level).
 * Function limits are accepted only with `allowDynamic`.
 */
export function resolveLimits(
  input: { limit?: unknown; window?: unknown; limits?: unknown },
  path: string,
  options: { allowDynamic?: boolean } = {},
): ResolvedLimit[] {
  const allowDynamic = options.allowDynamic ?? false;
  const hasSingle = input.limit !== undefined || input.window !== undefined;
  if (input.limits !== undefined) {
    if (hasSingle) {
      throw new ConfigError(
        `${optionPath(path, 'limits')} cannot be combined with ${optionPath(path, 'limit')}/${optionPath(path, 'window')}: ` +
          `use either { limit, window } or { limits: [...] }; got limit ${describe(input.limit)}, window ${describe(input.window)}`,
      );
    }
    return resolveLimitList(input.limits, optionPath(path, 'limits'), allowDynamic);
  }
  if (input.limit === undefined || input.window === undefined) {
    throw new ConfigError(
      `${optionPath(path, 'limit')} and ${optionPath(path, 'window')} are both required (or ${optionPath(path, 'limits')}: [{ limit, window }]); ` +
        `got limit ${describe(input.limit)}, window ${describe(input.window)}`,
    );
  }
  const windowMs = parseDuration(input.window, optionPath(path, 'window'));
  const option = optionPath(path, 'limit');
  return [{ name: formatDuration(windowMs), windowMs, limit: resolveQuota(input.limit, option, allowDynamic), option }];
}

function resolveLimitList(list: unknown, path: string, allowDynamic: boolean): ResolvedLimit[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(`${path} must be a non-empty array of { limit, window, name? }; got ${describe(list)}`);
  }
  const resolved: ResolvedLimit[] = [];
  const indexByName = new Map<string, number>();
  list.forEach((item: unknown, index) => {
    const itemPath = `${path}[${index}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw new ConfigError(`${itemPath} must be an object { limit, window, name? }; got ${describe(item)}`);
    }
    for (const key of Object.keys(item)) {
      if (!(LIMIT_ITEM_OPTIONS as readonly string[]).includes(key)) {
        throw new ConfigError(`${itemPath} has no option "${key}"; allowed options: ${LIMIT_ITEM_OPTIONS.join(', ')}`);
      }
    }
    const definition = item as { limit?: unknown; window?: unknown; name?: unknown };
    const limit = resolveQuota(definition.limit, `${itemPath}.limit`, allowDynamic);
    const windowMs = parseDuration(definition.window, `${itemPath}.window`);
    const name = definition.name === undefined ? formatDuration(windowMs) : validateLimitName(definition.name, `${itemPath}.name`);
    const previous = indexByName.get(name);
    if (previous !== undefined) {
      throw new ConfigError(
        `${itemPath}.name must differ from ${path}[${previous}]'s: both are named ${describe(name)} ` +
          `(a limit is named after its window unless "name" is given; give limits with the same window distinct names)`,
      );
    }
    indexByName.set(name, index);
    resolved.push({ name, windowMs, limit, option: `${itemPath}.limit` });
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
    throw new ConfigError(`${option} must be 1 to 64 characters from letters, digits and _ . : / @ -; got ${describe(value)}`);
  }
  return value;
}

/** The policies, built once, when no limit depends on the request; `undefined` otherwise. */
export function staticPolicies(limits: readonly ResolvedLimit[]): readonly Policy[] | undefined {
  const policies: Policy[] = [];
  for (const { name, windowMs, limit } of limits) {
    if (typeof limit !== 'number') return undefined;
    policies.push(Object.freeze({ name, limit, windowMs }));
  }
  return Object.freeze(policies);
}

/**
 * The policies for one request: static limits as they are, dynamic ones evaluated and validated
 * (a bad value from a `limit(req)` callback is a ConfigError naming the limit's option, e.g.
 * `'limit'` or `'limits[1].limit'`; `fallbackOption` for limits built without `option`).
 * Returns a promise only when a callback does.
 */
export function policiesFor(limits: readonly ResolvedLimit[], req: unknown, fallbackOption = 'limit'): Policy[] | Promise<Policy[]> {
  const quotas = limits.map((limit) => (typeof limit.limit === 'number' ? limit.limit : limit.limit(req)));
  if (quotas.some((quota) => typeof (quota as { then?: unknown } | null)?.then === 'function')) {
    return Promise.all(quotas).then((settled) => toPolicies(limits, settled, fallbackOption));
  }
  return toPolicies(limits, quotas, fallbackOption);
}

function toPolicies(limits: readonly ResolvedLimit[], quotas: readonly unknown[], fallbackOption: string): Policy[] {
  return limits.map(({ name, windowMs, limit, option }, index) => ({
    name,
    windowMs,
    limit: typeof limit === 'number' ? limit : validateLimitValue(quotas[index], option ?? fallbackOption),
  }));
}
