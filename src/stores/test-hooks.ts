/**
 * The one way from the test helpers (testing.ts) to what the stores keep private. Tests mark the
 * options object they construct a store with (`withTestSettings`), and the constructor looks it
 * up (`testSettingsOf`): one WeakMap lookup per construction, nothing per call. RedisStore's
 * static block lends `scriptStats` its private runner. No package entry point exports this module
 * or testing.ts, so an application can neither mark options nor reach a store's runner.
 */
import type { Clock } from './memory/clock.js';
import type { RedisStore } from './redis.js';
import type { ClusterGrouping } from './redis/batch-dispatch.js';
import type { BatchBounds } from './redis/decision-batcher.js';
import type { ScriptMode } from './redis/script-runner.js';

export interface StoreTestSettings {
  /** Store time in whole ms, in place of the monotonic clock (MemoryStore) or Redis `TIME` (the scripts). */
  readonly clock?: Clock | undefined;
  /** RedisStore: the script mode to start in. */
  readonly mode?: ScriptMode | undefined;
  /** RedisStore: decisions and arguments per batch call (small ones make a flush send several calls). */
  readonly batchBounds?: BatchBounds | undefined;
  /** RedisStore on Cluster: batch decisions per master (default) or per slot. */
  readonly clusterGrouping?: ClusterGrouping | undefined;
}

/** The script mode a RedisStore uses now, and the FUNCTION LOADs it sent per server (`host:port`). */
export interface ScriptStats {
  readonly mode: ScriptMode;
  readonly libraryLoads: ReadonlyMap<string, number>;
}

const marked = new WeakMap<object, StoreTestSettings>();

/** `options`, marked so that the store constructed with them takes `settings`. */
export function withTestSettings<Options extends object>(options: Options, settings: StoreTestSettings): Options {
  marked.set(options, settings);
  return options;
}

/** The settings `options` were marked with; undefined for every store an application makes. */
export function testSettingsOf(options: unknown): StoreTestSettings | undefined {
  return typeof options === 'object' && options !== null ? marked.get(options) : undefined;
}

/** Filled by RedisStore's static block, the only code that can read its private runner. */
export const testHooks: { scriptStats?: (store: RedisStore) => ScriptStats } = {};
