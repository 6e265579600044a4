/**
 * One GCRA limit's state, the in-memory twin of lua/gcra.lua: its theoretical arrival time (TAT,
 * store ms, fractional). The functions below are the Lua functions of the same names, step for
 * step, so both stores answer identically (the property tests hold them to it).
 */

/** Float slack when comparing sums of T (lua/gcra.lua's GCRA_EPSILON). */
export const GCRA_EPSILON = 1e-6;

export class GcraState {
  constructor(public tat: number) {}

  /** Once TAT is reached the whole burst is free again: nothing is left to remember. */
  get expiresAt(): number {
    return this.tat;
  }
}

/** TAT at `now`, never before now; one more than a burst ahead (a clock stepped back) is clamped. */
export function readTat(state: GcraState | undefined, now: number, period: number, burst: number): number {
  if (state === undefined || state.tat < now) return now;
  return Math.min(state.tat, now + burst * period);
}

/** Units left under `tat` after taking `taken` more; may be negative. */
export function gcraUnitsLeft(tat: number, now: number, period: number, burst: number, taken: number): number {
  return Math.floor((burst * period - (tat + taken * period - now)) / period + GCRA_EPSILON);
}

/** Whether `cost` more units fit under `tat`. */
export function gcraFits(tat: number, now: number, period: number, burst: number, cost: number): boolean {
  return tat + cost * period - now <= burst * period + GCRA_EPSILON;
}

/** ms until one more unit is free under `tat` (0 when the whole burst is free). */
export function gcraNextMs(tat: number, now: number, period: number, burst: number): number {
  const used = tat - now;
  if (used <= GCRA_EPSILON) return 0;
  const credit = burst * period - used;
  const whole = Math.floor(credit / period + GCRA_EPSILON);
  const wait = (whole + 1) * period - credit;
  return Math.min(Math.ceil(wait - GCRA_EPSILON), Math.ceil(used));
}

/** ms until a request of `cost` fits under `tat`; -1 when it never can (cost > burst). */
export function gcraWaitMs(tat: number, now: number, period: number, burst: number, cost: number): number {
  if (cost > burst) return -1;
  return Math.max(Math.ceil(tat + cost * period - now - burst * period - GCRA_EPSILON), 1);
}
