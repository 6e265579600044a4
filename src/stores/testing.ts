/**
 * Test-only ways to build and inspect the stores: a virtual store clock (so property and
 * contract tests drive MemoryStore and the Lua scripts with one deterministic time), RedisStore's
 * EVALSHA mode, and its script-loading counts. No package entry point exports this module; it
 * reaches the stores' private state through test-hooks.ts.
 */
import { ConfigError } from '../core/errors.js';
import { formatValue } from '../core/duration.js';
import { MemoryStore, type MemoryStoreOptions } from './memory.js';
import type { Clock } from './memory/clock.js';
import { RedisStore, type RedisClientLike } from './redis.js';
import type { ClusterGrouping } from './redis/batch-dispatch.js';
import type { BatchBounds } from './redis/decision-batcher.js';
import type { ScriptMode } from './redis/script-runner.js';
import { type ScriptStats, testHooks, withTestSettings } from './test-hooks.js';

export type { ScriptStats } from './test-hooks.js';

/** A virtual store clock: any function returning ms. */
export type TestClock = () => number;

export interface RedisStoreTestSettings {
  /**
   * Store time in ms (fractions dropped), sent to the scripts in place of Redis `TIME`. Key expiry
   * still runs on Redis's real clock, so under a test clock logs keep a TTL of at least 1 h.
   */
  clock?: TestClock | undefined;
  /** `'eval'` starts with EVALSHA/EVAL, as on servers without Functions. @default 'function' */
  mode?: ScriptMode | undefined;
  /**
   * Decisions and arguments per batch call; small bounds make one turn's decisions go out in
   * several calls. @default the production bounds (src/stores/redis/decision-batcher.ts)
   */
  batchBounds?: BatchBounds | undefined;
  /** Cluster: coalesce decisions per master (`'node'`) or per slot. @default 'node' */
  clusterGrouping?: ClusterGrouping | undefined;
}

/** A RedisStore on `client` with test settings. */
export function redisStoreForTests(client: RedisClientLike, settings: RedisStoreTestSettings = {}): RedisStore {
  const { clock, mode, batchBounds, clusterGrouping } = settings;
  if (mode !== undefined && mode !== 'function' && mode !== 'eval') {
    throw new ConfigError(`redisStoreForTests: mode must be 'function' or 'eval'; got ${formatValue(mode)}`);
  }
  if (batchBounds !== undefined && !(batchBounds.maxDecisions >= 1 && batchBounds.maxArguments >= 1)) {
    throw new ConfigError(`redisStoreForTests: batchBounds must have maxDecisions and maxArguments ≥ 1; got ${formatValue(batchBounds)}`);
  }
  if (clusterGrouping !== undefined && clusterGrouping !== 'node' && clusterGrouping !== 'slot') {
    throw new ConfigError(`redisStoreForTests: clusterGrouping must be 'node' or 'slot'; got ${formatValue(clusterGrouping)}`);
  }
  const test = { clock: clock === undefined ? undefined : wholeMs(clock), mode, batchBounds, clusterGrouping };
  return new RedisStore(withTestSettings({ client }, test));
}

/** The script mode `store` uses now, and the FUNCTION LOADs it sent per server (`host:port`). */
export function scriptStats(store: RedisStore): ScriptStats {
  // RedisStore's static block filled the hook when this module imported the class.
  return testHooks.scriptStats!(store);
}

/** A MemoryStore with `options`, on the virtual `clock` when given. */
export function memoryStoreForTests(options: MemoryStoreOptions & { clock?: TestClock | undefined } = {}): MemoryStore {
  const { clock, ...storeOptions } = options;
  return new MemoryStore(clock === undefined ? storeOptions : withTestSettings(storeOptions, { clock: wholeMs(clock) }));
}

/**
 * `clock` checked and floored at each reading: stores work in whole ms (a fraction would make the
 * stamp written and the stamp returned differ), and a test clock returning NaN must fail the call
 * rather than corrupt a log.
 */
function wholeMs(clock: TestClock): Clock {
  if (typeof clock !== 'function') throw new ConfigError(`test clock must be a function returning ms; got ${formatValue(clock)}`);
  return () => {
    const ms = clock();
    if (!Number.isFinite(ms)) throw new ConfigError(`test clock must return a finite number of ms; got ${formatValue(ms)}`);
    return Math.floor(ms);
  };
}
