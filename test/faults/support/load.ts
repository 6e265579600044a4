/**
 * Open-loop load for fault tests: one call every `intervalMs` for `durationMs`, whatever the answers
 * do (a slow answer never delays the next call, as real clients keep coming). Bounded: exactly
 * durationMs / intervalMs calls, then it waits for their answers and stops by itself.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { now } from './stats.js';

export interface Sample<T> {
  readonly index: number;
  /** ms (monotonic, `now()`) when the call was made and when it settled. */
  readonly start: number;
  readonly end: number;
  readonly value: T;
}

export interface OpenLoopResult<T> {
  readonly samples: Sample<T>[];
  /** Most calls in flight at once. */
  readonly maxInFlight: number;
}

export async function openLoop<T>(options: {
  intervalMs: number;
  durationMs: number;
  fire: (index: number) => Promise<T>;
  /** Called every tick with the calls in flight (e.g. to sample a client's queue). */
  onTick?: (inFlight: number) => void;
}): Promise<OpenLoopResult<T>> {
  const count = Math.floor(options.durationMs / options.intervalMs);
  const origin = now();
  const pending: Promise<Sample<T>>[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  for (let index = 0; index < count; index++) {
    const due = origin + index * options.intervalMs;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    options.onTick?.(inFlight);
    const start = now();
    pending.push(
      options.fire(index).then((value) => {
        inFlight--;
        return { index, start, end: now(), value };
      }),
    );
  }
  const samples = await Promise.all(pending);
  return { samples, maxInFlight };
}
