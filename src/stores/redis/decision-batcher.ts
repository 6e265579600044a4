/**
 * Coalesced decisions: every consume / peek / refund a RedisStore is asked for in one event-loop
 * turn is queued and sent at the end of that turn as one script call (lua/batch.lua), which runs
 * them one after another in arrival order, each exactly as it would run alone. This saves Redis
 * and Node a round trip (a write and a read syscall each, and the per-command work) per decision.
 *
 * When: the first decision of a turn schedules the flush with setImmediate, which runs as soon as
 * the I/O callbacks of the current loop iteration are done: no timer, so a lone request waits for
 * nothing (a lone caller measured p50 76 µs vs 77 µs before coalescing, 5 interleaved rounds).
 * A microtask or process.nextTick flush would not coalesce an HTTP server's requests at all:
 * Node ends a turn after every socket callback, so each request would go alone (measured: 1.00
 * FCALL per request at 50 wrk connections with nextTick, 0.04–0.08 with setImmediate).
 *
 * Bounds: MAX_BATCH_DECISIONS and MAX_BATCH_ARGUMENTS per call; a flush sends as many calls as it
 * needs, back to back, in order, and two at least from 2 × SPLIT_AT_LEAST decisions on.
 *
 * Errors: a call that fails (no connection, OOM, a malformed reply) fails each of its decisions
 * with the same StoreError; an error inside one decision (WRONGTYPE) fails that decision alone.
 * Callers keep their own timeout budgets (core wraps each promise) and refund a decision that
 * landed after its budget as before.
 *
 * A decision's limits are read when the turn ends, not when it is made: callers must not change
 * them in between (RedisStore never writes them; reusing one frozen array is fine).
 */
import type { ConsumeResult, StoreLimit } from '../../core/store.js';
import { StoreError } from '../../core/errors.js';
import { type BatchDecision, type BatchOutcome, batchArgumentCount } from './bindings.js';

/**
 * Decisions per call, so that one call holds Redis for well under ~1 ms. Measured on Redis 7.0.15
 * on this project's 2-vCPU VM, one pinned core, when every decision on a busy log still trimmed it
 * (7 commands: read tail, length and head, scan, LTRIM, PEXPIRE, push; trims are lazy now, ~3.4
 * commands): a decision cost 4–6 µs of script time without a trim, 8–10 µs with one. 64 decisions
 * took 0.6–0.75 ms per call, 128 took 1.0–2.2 ms. Redis CPU per decision was the same for 64, 100,
 * 128 and 256 (8.2–9.2 µs, 256 callers over 10 000 keys): the per-call cost (~8 µs) is already
 * spread thin at 64.
 */
export const MAX_BATCH_DECISIONS = 64;

/**
 * Arguments per call (keys and ARGV), counted at their most (batchArgumentCount: a decision whose
 * limit group no earlier one shares): a limit adds 5 (key, window, limit, cost, shape) and about
 * one decision's worth of script time; a decision's header 3. 512 hold 64 single-limit decisions
 * (512), or ~28 of 3 limits (~85 limit checks, under ~1 ms on the trim path measured above). A
 * decision with more limits than that (a route table of hundreds of rules) goes alone in its call,
 * as before batching: a decision is never split.
 */
export const MAX_BATCH_ARGUMENTS = 512;

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
    try {
      this.dispatch(decisions);
    } catch (err) {
      failAll(decisions, err); // a flush runs on its own (setImmediate): nothing may escape it
    }
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
 * A flush of at least twice this many decisions goes in two calls at least. With one call in
 * flight, Node and Redis take turns: Redis idles while Node settles the reply and builds the next
 * call, and Node idles meanwhile. With two, Node settles the first reply (and sends the next call
 * of those callers) while Redis runs the second. Measured (core bench script, interleaved A/B
 * runs, Redis 7.0 on one pinned core): 64 callers over 10 000 keys 59–66 k → 94–100 k decisions/s,
 * on one hot key 75–107 k → 140–204 k; at 256 callers (calls of 64 already) no change. Not below
 * 64: an HTTP server at 50 connections (turns of ~40) is busy anyway, and a split there only added
 * a call (and a second read of a hot key) per turn: +2–3 µs of Redis CPU per request on Koa.
 */
export const SPLIT_AT_LEAST = 32;

/**
 * `decisions` split into calls of at most `bounds.maxDecisions` decisions and
 * `bounds.maxArguments` arguments, in order; a decision larger than the argument bound alone.
 */
export function splitIntoCalls<Decision extends BatchDecision>(decisions: readonly Decision[], bounds: BatchBounds): Decision[][] {
  const perCall = decisions.length >= 2 * SPLIT_AT_LEAST ? Math.min(bounds.maxDecisions, Math.ceil(decisions.length / 2)) : bounds.maxDecisions;
  const calls: Decision[][] = [];
  let call: Decision[] = [];
  let argumentCount = 0;
  for (const decision of decisions) {
    const size = batchArgumentCount(decision);
    if (call.length > 0 && (call.length === perCall || argumentCount + size > bounds.maxArguments)) {
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
