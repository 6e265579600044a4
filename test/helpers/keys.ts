/**
 * The key of one limit's log, for tests that look at a store directly: the single-limit form of
 * core's one key builder (`storeLimits`), so tests lay keys out exactly as the limiters do.
 */
import { storeLimits } from '../../src/core/store-keys.js';

/** e.g. `limitKey('rl:', 'user:42', '100-in-1m')` → `rl:{<digest>}:100-in-1m`. */
export function limitKey(prefix: string, id: string, limitName: string): string {
  return storeLimits([{ id, prefix, policies: [{ name: limitName, limit: 1, windowMs: 1 }] }])[0]!.key;
}
