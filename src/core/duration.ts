import { ConfigError } from './errors.js';

/** A duration: milliseconds as a number, or a string such as `'500ms'`, `'15s'`, `'15m'`, `'1h'`, `'1d'`. */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/** Longest accepted duration: setTimeout's ceiling (2^31-1 ms ≈ 24.8 days). */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Parses a duration into whole milliseconds (≥ 1), or throws a ConfigError naming `option`.
 * @example parseDuration('15m', 'window') // 900000
 */
export function parseDuration(value: unknown, option: string): number {
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string') {
    const match = DURATION_PATTERN.exec(value);
    if (match) ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  if (ms === undefined || !Number.isFinite(ms) || !Number.isInteger(ms) || ms < 1 || ms > MAX_DURATION_MS) {
    throw new ConfigError(
      `${option} must be a whole number of milliseconds from 1 to ${MAX_DURATION_MS} or a string like '500ms', '15s', '15m', '1h', '1d'; got ${formatValue(value)}`,
    );
  }
  return ms;
}

/** Formats a window for names and logs: 60000 → '1m', 1500 → '1500ms'. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A short, safe rendering of a received value for error messages (`got ${formatValue(value)}`). */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 60 ? `${json.slice(0, 57)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
