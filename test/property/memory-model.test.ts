/**
 * MemoryStore against the naive reference model (one element per unit of cost, rescanned every
 * call) on random request/time sequences: identical results, and the window invariant — the
 * entries recorded in any window-long span never exceed the limit. fast-check prints the seed
 * and path of a failing run; replay it with PROPERTY_SEED / PROPERTY_PATH (see operations.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConsumeResult } from '../../src/core/store.js';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { ReferenceLimiter } from './reference-model.js';
import { type Player, type Step, VirtualClock, play, propertyParameters, sequenceArbitrary, storePlayer } from './operations.js';

const START = 1_750_000_000_000;

function referencePlayer(model: ReferenceLimiter, clock: VirtualClock): Player {
  return {
    consume: (limits, cost) => model.consume(limits, cost, clock.now),
    peek: (limits, cost) => model.peek(limits, cost, clock.now),
    refund: (limits, cost, stamp) => model.refund(limits, cost, stamp),
  };
}

/**
 * Throws unless, at every allowed consume, the entries recorded (net of refunds) within the
 * window ending at it fit the limit it was checked against. With a fixed limit per key, that is
 * "never more than the limit in any window-long span": every span ends at some recorded entry.
 * The tally is independent of the store: built from the stamps it returned.
 */
function checkWindowInvariant(steps: readonly Step[]): void {
  const recorded = new Map<string, number[]>();
  for (const step of steps) {
    if (step.kind === 'refund') {
      const { refunded } = step.result as { refunded: number };
      for (const { key, cost } of step.limits) {
        const stamps = recorded.get(key)!;
        for (let n = 0; n < (cost ?? step.cost); n++) {
          const at = stamps.indexOf(refunded);
          if (at >= 0) stamps.splice(at, 1);
        }
      }
      continue;
    }
    const result = step.result as ConsumeResult;
    if (step.kind === 'peek' || !result.allowed) continue;
    for (const { key, windowMs, limit, cost } of step.limits) {
      const stamps = recorded.get(key) ?? [];
      recorded.set(key, stamps);
      for (let n = 0; n < (cost ?? step.cost); n++) stamps.push(result.stamp);
      const inWindow = stamps.filter((stamp) => step.at - stamp < windowMs).length;
      if (inWindow > limit) throw new Error(`${inWindow} entries within ${windowMs} ms before ${step.at} on ${key}, limit ${limit}`);
    }
  }
}

describe('MemoryStore vs the reference model (property)', () => {
  it('gives identical results and never exceeds a limit in any window', async () => {
    await fc.assert(
      fc.asyncProperty(sequenceArbitrary(60), async ([config, operations]) => {
        const memoryClock = new VirtualClock(START);
        const modelClock = new VirtualClock(START);
        const store = memoryStoreForTests({ clock: memoryClock.read, sweepIntervalMs: 0 });
        const model = new ReferenceLimiter();
        const actual = await play(storePlayer(store), memoryClock, config, operations, 'run');
        const expected = await play(referencePlayer(model, modelClock), modelClock, config, operations, 'run');
        expect(actual).toEqual(expected);
        checkWindowInvariant(actual);
      }),
      propertyParameters(1_000),
    );
  });

  it('blocks until exactly retryAfterMs, then allows', async () => {
    await fc.assert(
      fc.asyncProperty(sequenceArbitrary(40), async ([config, operations]) => {
        const clock = new VirtualClock(START);
        const model = new ReferenceLimiter();
        const steps = await play(referencePlayer(model, clock), clock, config, operations, 'run');
        const last = steps.at(-1)!;
        const result = last.result as ConsumeResult;
        if (last.kind === 'refund' || result.allowed || result.retryAfterMs === -1) return;
        expect(result.retryAfterMs).toBeGreaterThan(0);
        const before = model.clone().peek(last.limits, last.cost, clock.now + result.retryAfterMs - 1);
        const after = model.clone().peek(last.limits, last.cost, clock.now + result.retryAfterMs);
        expect(before.allowed).toBe(false);
        expect(after.allowed).toBe(true);
      }),
      propertyParameters(300),
    );
  });
});
