/** Small numeric helpers for the fault tests' figures: percentiles, rounding, timers. */

/** The p-th percentile (0–100) of `values`, nearest-rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => (b > a ? b : a), -Infinity);
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => (b < a ? b : a), Infinity);
}

/** Rounds to `digits` decimals (for figures: 12.345678 → 12.3). */
export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** ms since an arbitrary origin, monotonic. */
export function now(): number {
  return performance.now();
}

/** p50/p99/max of latencies in ms, rounded, as figures named with `label`. */
export function latencyFigures(label: string, ms: readonly number[]): Record<string, number> {
  return {
    [`${label} p50 ms`]: round(percentile(ms, 50)),
    [`${label} p99 ms`]: round(percentile(ms, 99)),
    [`${label} max ms`]: round(max(ms)),
  };
}

export { watchEventLoop } from '../../helpers/event-loop.js';
