/**
 * Coalesced decisions: every consume / peek / refund a RedisStore is asked for in one event-loop
 * turn is queued and sent at the end of that turn as one script call (lua/batch.lua), which runs
 * them one after another in arrival order, each exactly as it would run alone. This saves Redis
 * and Node a round trip (a write and a read syscall each, and the per-command work) per decision.
 *
 * When: the first decision of a turn schedules the flush with setImmediate, which runs once the
 * current turn's I/O callbacks are done. A lone request waits for nothing (the loop goes straight
 * on to the flush), and no timer adds latency; but decisions whose requests arrived on different
 * sockets in one poll (an HTTP server under load) share a call, which a microtask or
 * process.nextTick flush would not give them (they run after every single socket callback).
 *
 * Bounds: see MAX_BATCH_DECISIONS and MAX_BATCH_ARGUMENTS; a flush sends as many calls as it
 * needs, back to back.
 *
 * Errors: a call that fails (no connection, OOM, timeout of the client) fails each of its
 * decisions with the same StoreError; an error inside one decision (WRONGTYPE) fails that
 * decision alone. Callers keep their own timeout budgets (core wraps each promise).
 */
import type { ConsumeResult, StoreLimit } from '../../core/store.js';
import { StoreError } from '../../core/errors.js';
import { type BatchDecision, type BatchOutcome, batchArgumentCount } from './bindings.js';

/**
 * Decisions per call. Measured on Redis 7.0 (one core of this 2-CPU machine, lua/batch.lua): a
 * single-limit consume costs ~1.6–2.5 µs of script time in a batch, so 256 of them run in
 * ~0.4–0.65 ms; blocked ones cost a little more (one LINDEX). 256 is also the concurrency at
 * which coalescing has already cut the per-call overhead (~8 µs) to noise.
 */
export const MAX_BATCH_DECISIONS = 128;

/**
 * Arguments per call (keys and ARGV). A limit costs 4 arguments and ~1.2–1.8 µs of script time
 * (its reads, its write); the decision headers 3 more. 2 048 arguments (~500 limits) keep a call
 * under ~1 ms. A single decision with more limits than that (a route table of hundreds of rules)
 * still goes alone in one call, as before batching: a decision is never split.
 */
export const MAX_BATCH_ARGUMENTS = 1_024;

export interface BatchBounds {
  readonly maxDecisions: number;
  readonly maxArguments: number;
}

export const DEFAULT_BATCH_BOUNDS: BatchBounds = { maxDecisions: MAX_BATCH_DECISIONS, maxArguments: MAX_BATCH_ARGUMENTS };

/** A decision waiting for the reply of its call. */
export interface PendingDecision extends BatchDecision {
  readonly resolve: (value: ConsumeResult | number) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Captured once, so an application test that fakes timers (they replace the global) does not
 * stall every store call until it advances its fake clock.
 */
const scheduleFlush: (flush: () => void) => void = setImmediate;

export class DecisionBatcher {
  #queue: PendingDecision[] = [];
  #scheduled = false;
  readonly #flushQueued = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  /** `dispatch` sends the decisions of one flush (grouped and split into calls as it needs). */
  constructor(private readonly dispatch: (decisions: PendingDecision[]) => void) {}

  consume(limits: readonly StoreLimit[], cost: number, align: number | undefined): Promise<ConsumeResult> {
    return this.#submit('consume', limits, cost, align) as Promise<ConsumeResult>;
  }

  peek(limits: readonly StoreLimit[], cost: number): Promise<ConsumeResult> {
    return this.#submit('peek', limits, cost, undefined) as Promise<ConsumeResult>;
  }

  /** Resolves with the number of entries removed. */
  refund(limits: readonly StoreLimit[], cost: number, stamp: number): Promise<number> {
    return this.#submit('refund', limits, cost, stamp) as Promise<number>;
  }

  /** Sends what is queued now (e.g. before a reset, so that it keeps its place after them). */
  flush(): void {
    if (this.#queue.length === 0) return;
    const decisions = this.#queue;
    this.#queue = [];
    this.dispatch(decisions);
  }

  #submit(kind: BatchDecision['kind'], limits: readonly StoreLimit[], cost: number, stamp: number | undefined): Promise<ConsumeResult | number> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind, limits, cost, stamp, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        scheduleFlush(this.#flushQueued);
      }
    });
  }
}

/**
 * `decisions` split into calls of at most `bounds.maxDecisions` decisions and
 * `bounds.maxArguments` arguments, in order; a decision larger than the argument bound alone.
 */
export function splitIntoCalls<Decision extends BatchDecision>(decisions: readonly Decision[], bounds: BatchBounds): Decision[][] {
  const calls: Decision[][] = [];
  let call: Decision[] = [];
  let argumentCount = 0;
  for (const decision of decisions) {
    const size = batchArgumentCount(decision);
    if (call.length > 0 && (call.length === bounds.maxDecisions || argumentCount + size > bounds.maxArguments)) {
      calls.push(call);
      call = [];
      argumentCount = 0;
    }
    call.push(decision);
    argumentCount += size;
  }
  if (call.length > 0) calls.push(call);
  return calls;
}

/** Settles a decision with its outcome: a StoreError rejects it, anything else resolves it. */
export function settleOne(decision: PendingDecision, outcome: BatchOutcome): void {
  if (outcome instanceof StoreError) decision.reject(outcome);
  else decision.resolve(outcome);
}

/** Settles each decision with its outcome (same order). */
export function settle(decisions: readonly PendingDecision[], outcomes: readonly BatchOutcome[]): void {
  for (let i = 0; i < decisions.length; i++) settleOne(decisions[i]!, outcomes[i]!);
}

/** Fails every decision of a call with the call's error (one StoreError, shared). */
export function failAll(decisions: readonly PendingDecision[], err: unknown): void {
  const error = err instanceof StoreError ? err : new StoreError(`Redis batch call failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  for (const decision of decisions) decision.reject(error);
}
