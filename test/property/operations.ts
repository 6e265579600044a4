/**
 * Random request/time sequences for the property tests, and a runner that plays one sequence on
 * a store while moving its virtual clock. A run fixes 3 windows (1–4 s, so Redis' real-time key
 * TTLs of 2 × window never cut into a run) and one limit per window, like a route's policies;
 * each operation picks a client key among 3, one or two of the windows, a cost (rarely another
 * limit; sometimes a cost of its own per limit, as route rules with different costs), and an
 * advance of the clock that favours the window edges.
 */
import fc from 'fast-check';
import { limitKey } from '../helpers/keys.js';
import type { ConsumeResult, Store, StoreLimit } from '../../src/core/store.js';

export interface RunConfig {
  readonly windows: readonly number[];
  readonly limits: readonly number[];
  /** Per policy: null a sliding log, a number the burst of a GCRA limit (absent: every policy a log). */
  readonly shapes?: readonly (number | null)[] | undefined;
  /** A penalty box that every call of the run carries after its limits (absent or null: none). */
  readonly box?: { readonly after: number; readonly blockMs: number; readonly memoryMs: number } | null | undefined;
}

/**
 * Move the clock `by` ms, or to the sliding edge of an earlier operation: `back` operations ago
 * (0 = the previous one), plus the window `toEdgeOf`, plus `offset` (-1, 0, 1). Never backwards.
 */
export type Advance =
  | { readonly by: number }
  | { readonly toEdgeOf: number; readonly back: number; readonly offset: number };

export interface Operation {
  readonly advance: Advance;
  readonly client: number;
  /** Indexes into RunConfig.windows/limits, distinct. */
  readonly policies: readonly number[];
  readonly cost: number;
  /**
   * Sometimes set: per chosen policy (same order), that limit's own cost (`StoreLimit.cost`), or
   * null to take `cost`, as when matching route rules declare different costs.
   */
  readonly limitCosts: readonly (number | null)[] | null;
  /** Rarely set: this request's limit instead of the run's (a `limit(req)` function), so logs can hold more than the limit. */
  readonly limitOverride: number | null;
  /** `refund` gives back a previous allowed consume, chosen by `target` (modulo their number). */
  readonly kind: 'consume' | 'peek' | 'refund';
  readonly target: number;
  /** Played in turns: made in the same turn as the operation before (its `advance` then unused). */
  readonly sameTurn: boolean;
}

// Small limits refuse often; from 5 on, a full sliding log is longer than the script's first read
// of a log (TAIL_READ, 4 entries), so its length comes from another command or from the push.
const limitArbitrary = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 10 }));

export const runConfigArbitrary: fc.Arbitrary<RunConfig> = fc.record({
  windows: fc.uniqueArray(fc.integer({ min: 1_000, max: 4_000 }), { minLength: 3, maxLength: 3 }),
  limits: fc.array(limitArbitrary, { minLength: 3, maxLength: 3 }),
});

/** Runs that mix sliding logs with GCRA limits, and often carry a penalty box. */
export const mixedRunConfigArbitrary: fc.Arbitrary<RunConfig> = fc.record({
  windows: fc.uniqueArray(fc.integer({ min: 1_000, max: 4_000 }), { minLength: 3, maxLength: 3 }),
  limits: fc.array(limitArbitrary, { minLength: 3, maxLength: 3 }),
  shapes: fc.array(fc.option(fc.integer({ min: 1, max: 6 }), { nil: null, freq: 2 }), { minLength: 3, maxLength: 3 }),
  box: fc.option(
    fc.record({ after: fc.integer({ min: 1, max: 3 }), blockMs: fc.integer({ min: 500, max: 3_000 }), memoryMs: fc.integer({ min: 500, max: 3_000 }) }),
    { nil: null, freq: 2 },
  ),
});

const advanceArbitrary: fc.Arbitrary<Advance> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ by: fc.constantFrom(0, 0, 1, 2) }) },
  { weight: 1, arbitrary: fc.record({ by: fc.integer({ min: 0, max: 4_000 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      toEdgeOf: fc.integer({ min: 0, max: 2 }),
      back: fc.integer({ min: 0, max: 5 }),
      offset: fc.integer({ min: -1, max: 1 }),
    }),
  },
);

export const operationArbitrary: fc.Arbitrary<Operation> = fc.record({
  advance: advanceArbitrary,
  // Skewed to one client, so most operations meet state left by earlier ones.
  client: fc.constantFrom(0, 0, 0, 1, 2),
  policies: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 2 }),
  cost: fc.integer({ min: 1, max: 3 }),
  limitCosts: fc.option(fc.array(fc.option(fc.integer({ min: 1, max: 4 }), { freq: 3 }), { minLength: 2, maxLength: 2 }), { freq: 3 }),
  limitOverride: fc.option(fc.integer({ min: 1, max: 5 }), { freq: 8 }),
  kind: fc.constantFrom('consume', 'consume', 'peek', 'refund'),
  target: fc.nat(),
  sameTurn: fc.boolean(),
});

/** A mutable virtual clock in whole ms, to pass as a store's `clock` option. */
export class VirtualClock {
  /** Times of the operations played so far, for edge advances. */
  private readonly history: number[] = [];

  constructor(public now: number) {}
  readonly read = (): number => this.now;

  advance(advance: Advance, config: RunConfig): void {
    if ('by' in advance) this.now += advance.by;
    else {
      const from = this.history[this.history.length - 1 - advance.back] ?? this.now;
      this.now = Math.max(this.now, from + config.windows[advance.toEdgeOf]! + advance.offset);
    }
    this.history.push(this.now);
  }
}

/** The limits of one operation, with production-shaped keys (`rl:{<digest of run + client>}:<window>`) and any own costs. */
export function limitsOf(operation: Operation, config: RunConfig, runId: string): StoreLimit[] {
  const id = `${runId}:client-${operation.client}`;
  const limits = operation.policies.map((policy, i) => {
    const burst = config.shapes?.[policy] ?? null;
    let limit: StoreLimit = {
      key: limitKey('rl:', id, `${burst === null ? '' : 'gcra-'}${config.windows[policy]}ms`),
      windowMs: config.windows[policy]!,
      limit: operation.limitOverride ?? config.limits[policy]!,
    };
    if (burst !== null) limit = { ...limit, algorithm: 'gcra', burst };
    const ownCost = operation.limitCosts?.[i] ?? null;
    return ownCost === null ? limit : { ...limit, cost: ownCost };
  });
  const { box } = config;
  if (box) limits.push({ key: limitKey('rl:', id, 'box'), windowMs: box.memoryMs, limit: box.after, algorithm: 'penalty-box', blockMs: box.blockMs });
  return limits;
}

/** What one operation did, comparable across stores. */
export interface Step {
  readonly at: number;
  readonly kind: Operation['kind'];
  readonly limits: readonly StoreLimit[];
  readonly cost: number;
  /** consume/peek: the result; refund: the stamp given back. */
  readonly result: ConsumeResult | { readonly refunded: number };
}

/** Anything that can play operations at a virtual time: a Store, or the reference model. */
export interface Player {
  consume(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> | ConsumeResult;
  peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> | ConsumeResult;
  refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<void> | void;
}

/**
 * How operations are played:
 * - `'sequential'`: each is awaited before the next is made (and the clock advanced);
 * - `'turns'`: an operation marked `sameTurn` is made together with the ones before it, at their
 *   time, in one event-loop turn, without awaiting them (a RedisStore sends a turn as one batch
 *   call); the turn is awaited before the clock moves on for the next. A refund gives back a
 *   consume of an earlier turn.
 */
export type PlayMode = 'sequential' | 'turns';

/**
 * Plays `operations` on `player`, advancing `clock` before each, and returns every step. `runId`
 * goes into every key, so runs sharing a store (and a Redis server) never see each other's logs.
 * Two players given the same operations in the same mode are given the same calls.
 */
export async function play(
  player: Player,
  clock: VirtualClock,
  config: RunConfig,
  operations: readonly Operation[],
  runId: string,
  mode: PlayMode = 'sequential',
): Promise<Step[]> {
  const steps: Step[] = [];
  const refundable: Refundable[] = [];
  /** Awaits the calls made together, then records them in order. */
  const settle = async (pending: readonly PendingStep[]): Promise<void> => {
    const results = await Promise.all(pending.map((entry) => entry.result));
    pending.forEach(({ step }, i) => {
      const result = results[i]!;
      if (step.kind === 'consume' && (result as ConsumeResult).allowed) {
        refundable.push({ limits: [...step.limits], cost: step.cost, stamp: (result as ConsumeResult).stamp });
      }
      steps.push({ ...step, result });
    });
  };
  if (mode === 'sequential') {
    for (const operation of operations) {
      clock.advance(operation.advance, config);
      await settle([playOne(player, operation, clock.now, config, runId, refundable)]);
    }
    return steps;
  }
  let turn: PendingStep[] = [];
  for (const operation of operations) {
    if (!operation.sameTurn || turn.length === 0) {
      await settle(turn);
      turn = [];
      clock.advance(operation.advance, config);
    }
    turn.push(playOne(player, operation, clock.now, config, runId, refundable));
  }
  await settle(turn);
  return steps;
}

/** An allowed consume a later refund may give back. */
interface Refundable {
  readonly limits: StoreLimit[];
  readonly cost: number;
  readonly stamp: number;
}

interface PendingStep {
  readonly step: Omit<Step, 'result'>;
  readonly result: Promise<Step['result']>;
}

/** Makes one operation's call now (a refund of a consume known by now, else a peek). */
function playOne(
  player: Player,
  operation: Operation,
  at: number,
  config: RunConfig,
  runId: string,
  refundable: readonly Refundable[],
): PendingStep {
  const target = refundable[operation.target % Math.max(1, refundable.length)];
  if (operation.kind === 'refund' && target !== undefined) {
    const refunded = { refunded: target.stamp };
    return { step: { at, kind: 'refund', limits: target.limits, cost: target.cost }, result: Promise.resolve(player.refund(target.limits, target.cost, target.stamp)).then(() => refunded) };
  }
  // A refund with nothing to give back yet is played as a peek.
  const limits = limitsOf(operation, config, runId);
  const kind = operation.kind === 'consume' ? 'consume' : 'peek';
  return { step: { at, kind, limits, cost: operation.cost }, result: Promise.resolve(player[kind](limits, operation.cost)) };
}

/** A store as a Player (bound methods). */
export function storePlayer(store: Store): Player {
  return {
    consume: (limits, cost) => store.consume(limits, cost),
    peek: (limits, cost) => store.peek(limits, cost),
    refund: (limits, cost, stamp) => store.refund(limits, cost, stamp),
  };
}

/**
 * An operation, sometimes made again at once, several times in a row (a client's burst: in turns,
 * the same turn), so that a turn often holds one client's identical requests back to back (a hot
 * key: a RedisStore sends them as one run, see lua/batch.lua).
 */
const burstArbitrary: fc.Arbitrary<Operation[]> = fc
  .tuple(operationArbitrary, fc.constantFrom(1, 1, 1, 1, 3, 7))
  .map(([operation, times]) => Array.from({ length: times }, (_, i) => (i === 0 ? operation : { ...operation, sameTurn: true })));

export const sequenceArbitrary = (maxOperations: number, config: fc.Arbitrary<RunConfig> = runConfigArbitrary) =>
  fc.tuple(
    config,
    fc.array(burstArbitrary, { minLength: 1, maxLength: Math.ceil(maxOperations / 2), size: 'max' }).map((bursts) => bursts.flat()),
  );

/**
 * fast-check parameters: `numRuns`, or a failing run replayed from the seed and path it printed
 * (PROPERTY_SEED=<seed> PROPERTY_PATH=<path> npx vitest run test/property).
 */
export function propertyParameters(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.PROPERTY_SEED;
  const path = process.env.PROPERTY_PATH;
  // A failure is reported, seed and path included, before the test's own timeout ends it: shrinking
  // a counterexample on Cluster (~1 s a run) can take minutes, and a timeout would hide it.
  const bounded = { numRuns, interruptAfterTimeLimit: PROPERTY_TIME_LIMIT_MS, markInterruptAsFailure: true };
  return seed === undefined ? bounded : { ...bounded, seed: Number(seed), ...(path === undefined ? {} : { path }) };
}

/** Well under the property tests' 60 s timeout; a whole property takes ≤ ~7 s here. */
const PROPERTY_TIME_LIMIT_MS = 40_000;
