/**
 * Time for MemoryStore. Windows and leases are measured on a monotonic clock, so a `Date` step
 * (NTP correction, a manual change, a VM resume) never stretches or shortens them.
 */

/** A clock returning whole milliseconds. */
export type Clock = () => number;

/**
 * Epoch ms: `performance.timeOrigin` (wall time at process start, read once) plus the monotonic
 * `performance.now()`. Close to `Date.now()` at start, but immune to later steps of the system clock.
 */
export const monotonicClock: Clock = () => Math.floor(performance.timeOrigin + performance.now());

/**
 * Microseconds for fencing tokens: `clock() * 1000` plus a sub-millisecond counter, so two calls in
 * the same millisecond (or a clock held still by a test) still get strictly increasing values.
 */
export class MicrosecondCounter {
  private last = 0;

  constructor(private readonly clock: Clock) {}

  /** The next value: ≥ the clock in µs, and > every value returned before. */
  next(): number {
    const micros = Math.max(this.last + 1, this.clock() * 1000);
    this.last = micros;
    return micros;
  }
}
