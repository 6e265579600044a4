/**
 * The store used when an option `store` is omitted: ONE MemoryStore per process, shared by every
 * limiter and guard, created on first use (importing ratelock allocates nothing). Shared, so two
 * middlewares with different prefixes still see one another's keys, exactly as with one Redis.
 *
 * "Per process", not per module copy: an app that both `require`s and `import`s ratelock loads
 * its CommonJS and ESM builds side by side, and a limiter made from each must still share one
 * count. The store is therefore kept on `globalThis` under a registered symbol. The `v1` names
 * the MemoryStore state a copy may share: change it if a release's MemoryStore could not serve a
 * guard of an earlier one.
 */
import type { Store } from '../core/store.js';
import { MemoryStore } from './memory.js';

const SHARED_SLOT = Symbol.for('ratelock.default-store.v1');

type Slotted = typeof globalThis & { [SHARED_SLOT]?: Store };

/** The process-wide default MemoryStore (its sweep timer is `unref()`'d: it never keeps the process alive). */
export function getDefaultStore(): Store {
  const slotted = globalThis as Slotted;
  return (slotted[SHARED_SLOT] ??= new MemoryStore());
}
