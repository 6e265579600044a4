import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { claimLogs, MAX_COST, policiesFor, resolveLimits, staticPolicies, validateCost, validateLimitValue } from '../../src/core/limits.js';
import type { Logger } from '../../src/core/store-call.js';
import { MemoryStore } from '../../src/stores/memory.js';

describe('resolveLimits()', () => {
  it('parses { limit, window } and names the limit after its quota and window', () => {
    expect(resolveLimits({ limit: 100, window: '15m' }, '')).toEqual([{ name: '100-in-15m', windowMs: 900_000, limit: 100, option: 'limit' }]);
    expect(resolveLimits({ limit: 5, window: 1_500 }, 'routes[0]')).toEqual([{ name: '5-in-1500ms', windowMs: 1_500, limit: 5, option: 'routes[0].limit' }]);
  });

  it('names a limit(req) function after its window only (its quota is not known in advance)', () => {
    const fn = () => 5;
    expect(resolveLimits({ limit: fn, window: '1m' }, '', { allowDynamic: true })).toEqual([{ name: '1m', windowMs: 60_000, limit: fn, option: 'limit' }]);
  });

  it('parses { limits } in order, with explicit names where given', () => {
    const limits = resolveLimits({ limits: [{ limit: 10, window: '1s' }, { limit: 500, window: '1h', name: 'hourly' }] }, '');
    expect(limits).toEqual([
      { name: '10-in-1s', windowMs: 1_000, limit: 10, option: 'limits[0].limit' },
      { name: 'hourly', windowMs: 3_600_000, limit: 500, option: 'limits[1].limit' },
    ]);
  });

  it('accepts two limits with the same window when their quotas or names differ', () => {
    const named = resolveLimits({ limits: [{ limit: 10, window: '1m', name: 'burst' }, { limit: 10, window: '1m' }] }, '');
    expect(named.map((limit) => limit.name)).toEqual(['burst', '10-in-1m']);
    const quotas = resolveLimits({ limits: [{ limit: 1, window: '1m' }, { limit: 5, window: 60_000 }] }, '');
    expect(quotas.map((limit) => limit.name)).toEqual(['1-in-1m', '5-in-1m']);
  });

  it('keeps function limits only when dynamic limits are allowed', () => {
    const fn = () => 5;
    expect(resolveLimits({ limit: fn, window: '1m' }, '', { allowDynamic: true })[0]!.limit).toBe(fn);
    expect(() => resolveLimits({ limit: fn, window: '1m' }, '')).toThrow(/^limit must be an integer from 1 to 1000000000 here \(a function limit needs a request\); got a function$/);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['negative limit', { limit: -1, window: '1m' }, /^limit must be an integer from 1 to 1000000000; got -1$/],
    ['zero limit', { limit: 0, window: '1m' }, /^limit must be .*; got 0$/],
    ['fractional limit', { limit: 1.5, window: '1m' }, /^limit must be .*; got 1\.5$/],
    ['NaN limit', { limit: Number.NaN, window: '1m' }, /^limit must be .*; got NaN$/],
    ['string limit', { limit: '10', window: '1m' }, /^limit must be .*; got "10"$/],
    ['huge limit', { limit: 1e12, window: '1m' }, /^limit must be .*; got 1000000000000$/],
    ['bad window', { limit: 1, window: 'fast' }, /^window must be a whole number of milliseconds .*; got "fast"$/],
    ['negative window', { limit: 1, window: -5 }, /^window must be .*; got -5$/],
    ['limit without window', { limit: 1 }, /^limit and window are both required .*; got limit 1, window undefined$/],
    ['window without limit', { window: '1m' }, /^limit and window are both required/],
    ['nothing', {}, /^limit and window are both required \(or limits: \[\{ limit, window \}\]\)/],
    ['both limit and limits', { limit: 1, window: '1s', limits: [{ limit: 1, window: '1s' }] }, /^limits cannot be combined with limit\/window/],
    ['limits not an array', { limits: { limit: 1, window: '1s' } }, /^limits must be a non-empty array of \{ limit, window, name\? \}; got \{"limit":1,"window":"1s"\}$/],
    ['empty limits', { limits: [] }, /^limits must be a non-empty array .*; got \[\]$/],
    ['limits item not an object', { limits: [5] }, /^limits\[0\] must be an object like \{ limit, window, name\?, algorithm\?, burst\? \}; got 5$/],
    ['limits item with a bad limit', { limits: [{ limit: 1, window: '1s' }, { limit: -2, window: '1m' }] }, /^limits\[1\]\.limit must be .*; got -2$/],
    ['limits item with a bad window', { limits: [{ limit: 1, window: '1y' }] }, /^limits\[0\]\.window must be .*; got "1y"$/],
    ['limits item with an unknown key', { limits: [{ limit: 1, window: '1s', windowMs: 5 }] }, /^limits\[0\] has no field "windowMs": use "window" \(ms or a string like '15m'\); allowed fields: limit, window, name, algorithm, burst$/],
    ['limits item with a bad name', { limits: [{ limit: 1, window: '1s', name: 'a b' }] }, /^limits\[0\]\.name must be 1 to 64 characters .*; got "a b"$/],
    ['limits item with a braced name', { limits: [{ limit: 1, window: '1s', name: '{x}' }] }, /^limits\[0\]\.name must be .*; got "\{x\}"$/],
    ['duplicate default names', { limits: [{ limit: 5, window: '1m' }, { limit: 5, window: 60_000 }] }, /^limits\[1\]\.name must differ from limits\[0\]'s: both are named "5-in-1m" \(unless "name" is given/],
    ['duplicate explicit names', { limits: [{ limit: 1, window: '1s', name: 'x' }, { limit: 5, window: '1m', name: 'x' }] }, /^limits\[1\]\.name must differ from limits\[0\]'s: both are named "x"/],
  ])('rejects %s with a ConfigError naming the option', (_case, input, message) => {
    expect(() => resolveLimits(input, '')).toThrow(ConfigError);
    expect(() => resolveLimits(input, '')).toThrow(message);
  });

  it('rejects two limit(req) functions with the same window and no names (both named after the window)', () => {
    const limits = { limits: [{ limit: () => 1, window: '1m' }, { limit: () => 2, window: '1m' }] };
    expect(() => resolveLimits(limits, '', { allowDynamic: true })).toThrow(/^limits\[1\]\.name must differ from limits\[0\]'s: both are named "1m"/);
  });

  it('prefixes option names with the path (route tables)', () => {
    expect(() => resolveLimits({ limit: 'x', window: '1s' }, 'routes[1]')).toThrow(/^routes\[1\]\.limit must be .*; got "x"$/);
    expect(() => resolveLimits({ limits: [{ limit: 1, window: 0 }] }, 'routes[0]')).toThrow(/^routes\[0\]\.limits\[0\]\.window must be/);
  });
});

describe('validateLimitValue() and validateCost()', () => {
  it('accept limits from 1 to 1e9 and costs from 1 to 10 000', () => {
    for (const value of [1, 2, 1_000_000_000]) expect(validateLimitValue(value, 'limit')).toBe(value);
    for (const value of [1, 2, 10_000]) expect(validateCost(value, 'cost')).toBe(value);
    expect(MAX_COST).toBe(10_000);
  });

  it.each([[0], [-5], [1.5], [Number.NaN], [Infinity], [1e9 + 1], ['2'], [null], [undefined]])('reject %s naming the option', (value) => {
    expect(() => validateLimitValue(value, 'routes[2].limit')).toThrow(/^routes\[2\]\.limit must be an integer from 1 to 1000000000; got /);
    expect(() => validateCost(value, 'cost')).toThrow(/^cost must be an integer from 1 to 10000; got /);
  });

  it('refuses a cost above 10 000 (one log entry per unit, all written by one store call)', () => {
    expect(() => validateCost(10_001, 'routes[0].cost')).toThrow(ConfigError);
    expect(() => validateCost(1_000_000, 'cost')).toThrow(/^cost must be an integer from 1 to 10000; got 1000000$/);
  });
});

describe('staticPolicies() and policiesFor()', () => {
  it('builds frozen policies once when no limit depends on the request', () => {
    const policies = staticPolicies(resolveLimits({ limits: [{ limit: 3, window: '1s' }] }, ''))!;
    expect(policies).toEqual([{ name: '3-in-1s', limit: 3, windowMs: 1_000 }]);
    expect(Object.isFrozen(policies) && Object.isFrozen(policies[0])).toBe(true);
    expect(staticPolicies(resolveLimits({ limit: () => 3, window: '1s' }, '', { allowDynamic: true }))).toBeUndefined();
  });

  it('evaluates dynamic limits per request, synchronously when they are synchronous', async () => {
    const limits = resolveLimits({ limits: [{ limit: (req: { plan: string }) => (req.plan === 'pro' ? 100 : 10), window: '1m' }, { limit: 1_000, window: '1h' }] }, '', { allowDynamic: true });
    expect(policiesFor(limits, { plan: 'pro' })).toEqual([
      { name: '1m', limit: 100, windowMs: 60_000 },
      { name: '1000-in-1h', limit: 1_000, windowMs: 3_600_000 },
    ]);
    const asyncLimits = resolveLimits({ limit: async () => 7, window: '1s' }, '', { allowDynamic: true });
    const pending = policiesFor(asyncLimits, {});
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).resolves.toEqual([{ name: '1s', limit: 7, windowMs: 1_000 }]);
  });

  it('rejects a bad value from a limit callback with a ConfigError naming the option', async () => {
    const one = resolveLimits({ limit: () => Number.NaN, window: '1s' }, '', { allowDynamic: true });
    expect(() => policiesFor(one, {})).toThrow(/^limit must be an integer from 1 to 1000000000; got NaN$/);
    const several = resolveLimits({ limits: [{ limit: 5, window: '1s' }, { limit: async () => -1, window: '1m' }] }, 'routes[3]', { allowDynamic: true });
    await expect(policiesFor(several, {})).rejects.toThrow(/^routes\[3\]\.limits\[1\]\.limit must be an integer from 1 to 1000000000; got -1$/);
  });
});

describe('claimLogs()', () => {
  function recordingLogger(): Logger & { lines: string[] } {
    const lines: string[] = [];
    return { lines, warn: (message) => void lines.push(message) };
  }
  const limitsOf = (input: Record<string, unknown>) => resolveLimits(input, '', { allowDynamic: true });

  it('stays quiet for limiters whose default names keep their logs apart, and for identical limiters', () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const logger = recordingLogger();
    claimLogs(store, 'rl:', limitsOf({ limit: 100, window: '1m' }), logger);
    claimLogs(store, 'rl:', limitsOf({ limit: 5, window: '1m' }), logger);
    claimLogs(store, 'rl:', limitsOf({ limit: 5, window: '1m' }), logger);
    claimLogs(new MemoryStore({ sweepIntervalMs: 0 }), 'rl:', limitsOf({ limits: [{ limit: 7, window: '1m', name: '5-in-1m' }] }), logger);
    expect(logger.lines).toEqual([]);
  });

  it('warns once per log when two limiters claim it with different quotas or windows', () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const logger = recordingLogger();
    claimLogs(store, 'rl:', limitsOf({ limits: [{ limit: 5, window: '1m', name: 'login' }] }), logger);
    claimLogs(store, 'rl:', limitsOf({ limits: [{ limit: 10, window: '1m', name: 'login' }] }), logger);
    claimLogs(store, 'rl:', limitsOf({ limits: [{ limit: 5, window: '1h', name: 'login' }] }), logger);
    claimLogs(store, 'other:', limitsOf({ limits: [{ limit: 10, window: '1m', name: 'login' }] }), logger);
    expect(logger.lines).toEqual([
      '[ratelock] two limiters on one store use the same log "rl:{…}:login" with different limits (5 per 1m; 10 per 1m), ' +
        'so each counts the other\'s requests. Give one of them another "prefix" or limit "name".',
    ]);
  });

  it('treats two limit(req) functions as two quotas, and one function reused as one', () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const logger = recordingLogger();
    const byPlan = () => 10;
    claimLogs(store, 'rl:', limitsOf({ limit: byPlan, window: '1m' }), logger);
    claimLogs(store, 'rl:', limitsOf({ limit: byPlan, window: '1m' }), logger);
    expect(logger.lines).toEqual([]);
    claimLogs(store, 'rl:', limitsOf({ limit: () => 20, window: '1m' }), logger);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] two limiters on one store use the same log "rl:\{…\}:1m" with different limits \(limit\(req\) function #\d+ per 1m; limit\(req\) function #\d+ per 1m\)/);
  });
});
