/** A MemoryStore whose clock stands still at `clock.now` (advance it by assigning `clock.now`), for HTTP tests of exact figures. */
import type { MemoryStore } from '../../../src/stores/memory.js';
import { memoryStoreForTests } from '../../../src/stores/testing.js';

export function stillStore(): { store: MemoryStore; clock: { now: number } } {
  const clock = { now: 1_700_000_000_000 };
  return { store: memoryStoreForTests({ clock: () => clock.now, sweepIntervalMs: 0 }), clock };
}
