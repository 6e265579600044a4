/**
 * The store used when an option `store` is omitted: ONE MemoryStore per process, shared by every
 * limiter and guard, created on first use (importing ratelock allocates nothing). Shared, so two
 * middlewares with different prefixes still see one another's keys, exactly as with one Redis.
 */
import type { Store } from '../core/store.js';
import { MemoryStore } from './memory.js';

let defaultStore: Store | undefined;

/** The process-wide default MemoryStore (its sweep timer is `unref()`'d: it never keeps the process alive). */
export function getDefaultStore(): Store {
  defaultStore ??= new MemoryStore();
  return defaultStore;
}
