/**
 * consume / peek over limits whose keys lie in different Redis Cluster slots (a per-route table
 * mixing ids). A script call cannot span slots, so each slot group gets its own call:
 * all-or-nothing by compensation, not one atomic step. consume runs the groups one after another,
 * the tightest first (see tightestFirst); when a group blocks, the groups already recorded are
 * refunded and the rest are peeked so that the answer names the same deciding limit a single
 * call would; when a group's call fails, the groups already recorded are refunded (best effort)
 * and the error is rethrown. Every group after the first reuses the first group's stamp (`align`)
 * so that one stamp refunds the request everywhere. Limits with their own `cost` keep it in every
 * group call and every compensating refund (the StoreLimit objects are passed through), so each
 * log gets back exactly what it took.
 */
import type { ConsumeResult, StoreLimit } from '../../core/store.js';

export interface GroupOperations {
  consume(limits: readonly StoreLimit[], cost: number, align: number | undefined): Promise<ConsumeResult>;
  peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult>;
  refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void>;
}

/** A group's result with `index` already mapped into the original limits. */
type Mapped = ConsumeResult;

/** A group that recorded the request, and the stamp that refunds it there. */
interface Recorded {
  readonly limits: StoreLimit[];
  readonly stamp: number;
}

function pick(limits: readonly StoreLimit[], group: readonly number[]): StoreLimit[] {
  return group.map((index) => limits[index]!);
}

function mapIndex(result: ConsumeResult, group: readonly number[]): Mapped {
  return { ...result, index: group[result.index]! };
}

/** Longer wait first (-1 = never, the longest), then the lower original index. */
function waitsLonger(a: Mapped, b: Mapped): boolean {
  if (a.retryAfterMs === b.retryAfterMs) return a.index < b.index;
  if (a.retryAfterMs === -1) return true;
  if (b.retryAfterMs === -1) return false;
  return a.retryAfterMs > b.retryAfterMs;
}

/** Fewer remaining first, then the lower original index. */
function closerToBlocking(a: Mapped, b: Mapped): boolean {
  return a.remaining < b.remaining || (a.remaining === b.remaining && a.index < b.index);
}

/** Combines per-group results into the result one call over all limits would have given. */
export function combineResults(results: readonly Mapped[], stamp: number): ConsumeResult {
  const blocked = results.filter((result) => !result.allowed);
  if (blocked.length > 0) {
    return { ...blocked.reduce((best, next) => (waitsLonger(next, best) ? next : best)), stamp: 0 };
  }
  return { ...results.reduce((best, next) => (closerToBlocking(next, best) ? next : best)), stamp };
}

/** Units a group lets through at once at most: its tightest limit's quota (a GCRA limit's burst) in this request's units. */
function unitsAtMost(limits: readonly StoreLimit[], group: readonly number[], cost: number): number {
  let least = Infinity;
  for (const index of group) {
    const limit = limits[index]!;
    if (limit.algorithm === 'penalty-box') continue; // not a quota; it shares its limits' group
    const quota = limit.algorithm === 'gcra' ? (limit.burst ?? limit.limit) : limit.limit;
    least = Math.min(least, quota / (limit.cost ?? cost));
  }
  return least;
}

/**
 * The groups, the one with the smallest quota first (ties keep their order). A unit a group
 * records is held until a later group's refusal has it refunded, and requests meanwhile find it
 * taken: a burst on a per-route table (`/api/*` 30, `/api/export` 5) whose exports took `/api/*`
 * units first let 5 of 30 through. The tightest group is the likeliest to refuse, and refusing
 * first, it holds nothing elsewhere.
 */
function tightestFirst(limits: readonly StoreLimit[], groups: readonly number[][], cost: number): readonly number[][] {
  const units = groups.map((group) => unitsAtMost(limits, group, cost));
  return groups.map((_, g) => g).sort((a, b) => units[a]! - units[b]! || a - b).map((g) => groups[g]!);
}

export async function consumeGrouped(
  limits: readonly StoreLimit[],
  slotGroups: readonly number[][],
  cost: number,
  operations: GroupOperations,
): Promise<ConsumeResult> {
  const recorded: Recorded[] = [];
  const results: Mapped[] = [];
  const groups = tightestFirst(limits, slotGroups, cost);
  let align: number | undefined;
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g]!;
    const groupLimits = pick(limits, group);
    let result: ConsumeResult;
    try {
      result = await operations.consume(groupLimits, cost, align);
    } catch (err) {
      // The call fails as a whole, so it must record nothing: undo the groups already recorded.
      await refundRecorded(recorded, cost, operations);
      throw err;
    }
    if (!result.allowed) {
      // Undo what the earlier groups recorded, and ask the later ones what they would say.
      const later = groups.slice(g + 1);
      const [, peeked] = await Promise.all([refundRecorded(recorded, cost, operations), peekEach(limits, later, cost, operations)]);
      return combineResults([...results, mapIndex(result, group), ...peeked], 0);
    }
    align ??= result.stamp;
    recorded.push({ limits: groupLimits, stamp: result.stamp });
    results.push(mapIndex(result, group));
  }
  // If a group could not reuse the stamp (its clock is off by more than 1 % of the window), a
  // refund by `align` misses that group: the request then stays counted there (conservative).
  return combineResults(results, align ?? 0);
}

/**
 * Best-effort compensation: refunds every recorded group, each on its own, and never throws. A
 * refund that fails (Redis down, timeout) leaves that request counted there until its window
 * passes: over-counting, never over-admitting.
 */
async function refundRecorded(recorded: readonly Recorded[], cost: number, operations: GroupOperations): Promise<void> {
  await Promise.allSettled(recorded.map((entry) => operations.refund(entry.limits, cost, entry.stamp)));
}

/**
 * Peeks of the groups after a blocking one, only to name the deciding limit as one call would.
 * The request is blocked whatever they say, so a group whose peek fails is left out rather than
 * turning a known "blocked" into a store error.
 */
async function peekEach(
  limits: readonly StoreLimit[],
  groups: readonly number[][],
  cost: number,
  operations: GroupOperations,
): Promise<Mapped[]> {
  const settled = await Promise.allSettled(groups.map((group) => operations.peek(pick(limits, group), cost)));
  const mapped: Mapped[] = [];
  settled.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') mapped.push(mapIndex(outcome.value, groups[i]!));
  });
  return mapped;
}

export async function peekGrouped(
  limits: readonly StoreLimit[],
  groups: readonly number[][],
  cost: number,
  operations: GroupOperations,
): Promise<ConsumeResult> {
  const results = await Promise.all(groups.map((group) => operations.peek(pick(limits, group), cost)));
  return combineResults(
    results.map((result, i) => mapIndex(result, groups[i]!)),
    0,
  );
}
