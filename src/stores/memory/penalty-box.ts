/**
 * One penalty box, the in-memory twin of lua/penalty-box.lua: closed until a time, or counting the
 * refusals ("strikes") since the client's last allowed request, each within `memoryMs` of the
 * one before. Same rules, same order, as the Lua functions of the same names.
 */
export class PenaltyBox {
  constructor(
    /** Store ms until which the box is closed; 0 while it only counts strikes. */
    public closedUntil: number,
    public strikes: number,
    /** Store ms of the latest strike. */
    public lastStrike: number,
    /** How long a strike is remembered (the box's `windowMs`). */
    public memoryMs: number,
  ) {}

  get expiresAt(): number {
    return this.closedUntil > 0 ? this.closedUntil : this.lastStrike + this.memoryMs;
  }
}

/** The box at `now`: ms it stays closed (0 = open), clamped to `forMs` (a clock stepped back), and its strikes. */
export function readBox(box: PenaltyBox | undefined, now: number, forMs: number, memoryMs: number): { closedMs: number; strikes: number } {
  if (box === undefined) return { closedMs: 0, strikes: 0 };
  if (box.closedUntil > 0) {
    const closedMs = box.closedUntil - now;
    return closedMs <= 0 ? { closedMs: 0, strikes: 0 } : { closedMs: Math.min(closedMs, forMs), strikes: 0 };
  }
  if (now - box.lastStrike >= memoryMs || box.lastStrike > now + memoryMs) return { closedMs: 0, strikes: 0 };
  return { closedMs: 0, strikes: box.strikes };
}

/** The box after one more refusal: closed for `forMs` once it makes `after` strikes. */
export function strikeBox(strikes: number, now: number, after: number, forMs: number, memoryMs: number): PenaltyBox {
  return strikes + 1 >= after ? new PenaltyBox(now + forMs, 0, now, memoryMs) : new PenaltyBox(0, strikes + 1, now, memoryMs);
}
