/**
 * `rateLimit()` options are validated once, at construction, on every adapter: each bad value is
 * a ConfigError naming the option, what it expects and what it got. Fastify's plugin validates its
 * options when registered (fastify-plugins.test.ts checks register() itself); here they go to the
 * function the plugin calls.
 */
import { describe, expect, it } from 'vitest';
import { rateLimit as expressRateLimit } from '../../src/adapters/express/rate-limit.js';
import { rateLimit as koaRateLimit } from '../../src/adapters/koa/rate-limit.js';
import { pluginLimiters } from '../../src/adapters/fastify/rate-limit.js';
import { rateLimit as honoRateLimit } from '../../src/adapters/hono/rate-limit.js';
import { resolveRateLimit } from '../../src/adapters/http/limiter-options.js';
import type { LimitRequest } from '../../src/core/index.js';
import '../../src/index.js'; // the entry point provides the default store
import { ConfigError } from '../../src/core/errors.js';
import { DEFAULTS } from '../../src/core/defaults.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { getDefaultStore } from '../../src/stores/default-store.js';

const store = new MemoryStore({ sweepIntervalMs: 0 });
const base = { store, limit: 10, window: '1m' };

describe.each([
  ['express', expressRateLimit],
  ['koa', koaRateLimit],
  ['fastify', pluginLimiters],
  ['hono', honoRateLimit],
] as const)('rateLimit options on %s', (_name, rateLimit) => {
  const construct = (options: Record<string, unknown>) => () => rateLimit(options as never);

  it.each([
    [{ ...base, windw: '1m' }, 'rateLimit() has no option "windw"; allowed options: store, prefix, timeout, onStoreError, logger, algorithm, block, cost, skip, refund, headers'],
    [{ store, max: 10, window: '1m' }, 'rateLimit() has no option "max": use "limit" (express-rate-limit\'s max); allowed options:'],
    [{ store, limit: 10, windowMs: 60_000 }, 'rateLimit() has no option "windowMs": use "window" (ms or a string like \'15m\'); allowed options:'],
    [{ ...base, keyGenerator: () => 'k' }, 'rateLimit() has no option "keyGenerator": use "key" with an extractor'],
    [{ ...base, skipFailedRequests: true }, 'rateLimit() has no option "skipFailedRequests": use "refund: \'failure\'"'],
    [{ ...base, headers: 'draft-9' }, "headers must be one of 'draft-10', 'draft-8', 'draft-7', 'draft-6', 'legacy' or false; got \"draft-9\""],
    [{ ...base, headers: true }, "headers must be one of 'draft-10', 'draft-8', 'draft-7', 'draft-6', 'legacy' or false; got true"],
    [{ ...base, headers: 'legacy', partitionKey: true }, "partitionKey applies to headers 'draft-10' and 'draft-8' only; headers is 'legacy'"],
    [{ ...base, headers: 'draft-7', quotaUnit: 'content-bytes' }, "quotaUnit applies to headers 'draft-10' and 'draft-8' only; headers is 'draft-7'"],
    [{ ...base, algorithm: 'fixed-window' }, "algorithm must be 'sliding-log' (exact count of the last window) or 'gcra' (even rate with a burst); got \"fixed-window\""],
    [{ ...base, burst: 5 }, "burst applies to algorithm 'gcra' only; got burst 5 on a 'sliding-log' limit"],
    [{ ...base, block: { after: 3 } }, 'block.for is required'],
    [{ ...base, limit: 0 }, 'limit must be an integer from 1 to 1000000000; got 0'],
    [{ store, limit: 5 }, 'limit and window are both required'],
    [{ ...base, limits: [{ limit: 1, window: '1s' }] }, 'limits cannot be combined with limit/window'],
    [{ ...base, cost: 1.5 }, 'cost must be an integer from 1 to 10000; got 1.5'],
    [{ ...base, cost: 10_001 }, 'cost must be an integer from 1 to 10000; got 10001'],
    [{ ...base, statusCode: 200 }, 'statusCode must be an integer HTTP error status from 400 to 599; got 200'],
    [{ ...base, message: 42 }, 'message must be a string or a JSON-serialisable object; got 42'],
    [{ ...base, refund: 'always' }, "refund must be 'success', 'failure' or a function returning true to give the cost back; got \"always\""],
    [{ ...base, skip: true }, 'skip must be a function (req) => boolean; got true'],
    [{ ...base, onLimited: 'x' }, 'onLimited must be a function; got "x"'],
    [{ ...base, onDecision: {} }, 'onDecision must be a function (req, decision) => void; got {}'],
    [{ ...base, onStoreError: 'retry' }, "onStoreError must be 'open', 'closed' or a function returning one of them; got \"retry\""],
    [{ ...base, timeout: 0 }, 'timeout must be a whole number of milliseconds from 1 to'],
    [{ ...base, key: 'ip' }, 'key must be a key extractor (req) => string | undefined, or a non-empty array of them; got "ip"'],
    [{ ...base, prefix: 'a b' }, 'prefix must be a string of at most 64 printable ASCII characters'],
    [{ ...base, store: {} }, 'store must be a Store'],
    [{ ...base, logger: {} }, 'logger must be an object with a warn(message) method'],
    [null, 'rateLimit() options must be an object'],
  ])('%j → ConfigError', (options, message) => {
    expect(construct(options as Record<string, unknown>)).toThrowError(ConfigError);
    expect(construct(options as Record<string, unknown>)).toThrowError(message);
  });

  it('treats options set to undefined as absent', () => {
    expect(() => rateLimit({ ...base, headers: undefined, prefix: undefined, cost: undefined } as never)).not.toThrow();
  });

  it('warns once, through the logger, when two limiters name a log alike with different limits', () => {
    const shared = new MemoryStore({ sweepIntervalMs: 0 });
    const lines: string[] = [];
    const logger = { warn: (line: string) => void lines.push(line) };
    rateLimit({ store: shared, limits: [{ limit: 5, window: '1m', name: 'api' }], logger } as never);
    rateLimit({ store: shared, limits: [{ limit: 50, window: '1m', name: 'api' }], logger } as never);
    rateLimit({ store: shared, limits: [{ limit: 5, window: '1m', name: 'api' }], prefix: 'other:', logger } as never);
    rateLimit({ store: shared, limit: 50, window: '1m', logger } as never);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('[ratelock] two limiters on one store use the same log "rl:{…}:api" with different limits (5 per 1m; 50 per 1m)');
  });
});

describe('resolveRateLimit', () => {
  it('applies the defaults from DEFAULTS and the shared default store', () => {
    const config = resolveRateLimit({ limit: 5, window: '1m' });
    expect(config.limiter.store).toBe(getDefaultStore());
    expect(config.limiter.prefix).toBe(DEFAULTS.prefix);
    expect(config.limiter.logger).toBe(console);
    expect(config.statusCode).toBe(DEFAULTS.statusCode);
    expect(config.refund).toBeUndefined();
    expect(config.writeHeaders).toBeTypeOf('function');
  });

  it('resolves a request to one part with its key, policies and cost', () => {
    const config = resolveRateLimit({ limits: [{ limit: 5, window: '1s' }, { limit: 100, window: '1h', name: 'hourly' }], key: () => 'k', cost: 2 });
    const request = config.resolve({}) as LimitRequest;
    expect(request.cost).toBe(2);
    expect(request.parts).toHaveLength(1);
    expect(request.parts[0]!.id).toBe('k');
    expect(request.parts[0]!.policies.map((policy) => policy.name)).toEqual(['5-in-1s', 'hourly']);
  });

  it('evaluates a dynamic limit per request, and builds static policies once', () => {
    let quota = 5;
    const dynamic = resolveRateLimit({ limit: () => quota, window: '1m', key: () => 'k' });
    expect((dynamic.resolve({}) as LimitRequest).parts[0]!.policies).toEqual([{ name: '1m', limit: 5, windowMs: 60_000 }]);
    quota = 7;
    expect((dynamic.resolve({}) as LimitRequest).parts[0]!.policies).toEqual([{ name: '1m', limit: 7, windowMs: 60_000 }]);
    const fixed = resolveRateLimit({ limit: 5, window: '1m', key: () => 'k' });
    expect((fixed.resolve({}) as LimitRequest).parts[0]!.policies).toBe((fixed.resolve({}) as LimitRequest).parts[0]!.policies);
  });

  it('accepts headers: false (no writer)', () => {
    expect(resolveRateLimit({ limit: 5, window: '1m', headers: false }).writeHeaders).toBeUndefined();
  });
});
