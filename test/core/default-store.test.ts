/**
 * Core imports no concrete store: the default store (used when `store` is omitted) is provided by
 * the public entry points when they load. Core on its own says so instead of guessing.
 */
import { describe, expect, it, vi } from 'vitest';

describe('the default store', () => {
  it('is missing from core on its own: a guard without a store is a ConfigError saying what to pass', async () => {
    vi.resetModules();
    const core = await import('../../src/core/index.js');
    expect(() => new core.RateLimiter({ limit: 1, window: '1m' })).toThrow(core.ConfigError);
    expect(() => new core.LockGuard({ ttl: '1s' })).toThrow('no store given and no default store provided: pass a store option');
  });

  it('is the one process-wide MemoryStore once an entry point is loaded, shared by every guard', async () => {
    vi.resetModules();
    const ratelock = await import('../../src/index.js');
    const { getDefaultStore } = await import('../../src/stores/default-store.js');
    const limiter = new ratelock.RateLimiter({ limit: 1, window: '1m' });
    expect(getDefaultStore()).toBeInstanceOf(ratelock.MemoryStore);
    expect((await limiter.consume('k')).allowed).toBe(true);
    expect((await new ratelock.RateLimiter({ limit: 1, window: '1m' }).consume('k')).allowed).toBe(false);
  });
});
