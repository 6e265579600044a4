/**
 * This process's event-loop delay while a test runs. A timer fires no earlier than the loop lets
 * it, so an upper bound on how long a call waits for its timeout adds this delay: on a loaded
 * machine the bound then still tests the store, not the machine's scheduling.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Starts watching; the returned function stops and gives the delay's p99 and max in ms (0.1 ms steps). */
export function watchEventLoop(): () => { p99: number; max: number } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return () => {
    histogram.disable();
    return { p99: Math.round(histogram.percentile(99) / 1e5) / 10, max: Math.round(histogram.max / 1e5) / 10 };
  };
}
