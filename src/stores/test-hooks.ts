/**
 * The one way from the test helpers (testing.ts) to what the stores keep private: a virtual store
 * clock, the script mode, script-loading counts. Each store class fills its slot here in a static
 * block, with functions that alone can reach its #private state. No package entry point exports
 * this module or testing.ts, so an application cannot reach them, and a store made with `new`
 * reads one unset static field at construction and nothing on its calls.
 */
import type { MemoryStore, MemoryStoreOptions } from './memory.js';
import type { Clock } from './memory/clock.js';
import type { RedisStore, RedisStoreOptions } from './redis.js';
import type { ScriptMode, ScriptTestSettings } from './redis/script-runner.js';

/** The script mode a RedisStore uses now, and the FUNCTION LOADs it sent per server (`host:port`). */
export interface ScriptStats {
  readonly mode: ScriptMode;
  readonly libraryLoads: ReadonlyMap<string, number>;
}

export const testHooks: {
  redis?: {
    create(options: RedisStoreOptions, settings: ScriptTestSettings): RedisStore;
    scriptStats(store: RedisStore): ScriptStats;
  };
  memory?: {
    create(options: MemoryStoreOptions | undefined, clock: Clock): MemoryStore;
  };
} = {};
