/**
 * Coalesced decisions: every consume / peek / refund a RedisStore is asked for in one event-loop
 * turn is queued and sent at the end of that turn (standalone: as soon as one call is full) as
 * script calls (lua/batch.lua), which run them one after another in arrival order, each exactly as
 * it would run alone. This saves Redis and Node a round trip (a write and a read syscall each,
 * and the per-command work) per decision.
 *
 * When: the first decision of a turn schedules the flush with setImmediate, which runs as soon as
 * the I/O callbacks of the current loop iteration are done: no timer, so a lone request waits for
 * nothing (a lone caller measured p50 76 µs vs 77 µs before coalescing, 5 interleaved rounds).
 * A microtask or process.nextTick flush would not coalesce an HTTP server's requests at all:
 * Node ends a turn after every socket callback, so each request would go alone (measured: 1.00
 * FCALL per request at 50 wrk connections with nextTick, 0.04–0.08 with setImmediate). On a
 * standalone server, a full call (MAX_BATCH_DECISIONS, MAX_BATCH_ARGUMENTS; MAX_BUSY_BATCH_DECISIONS
 * while the previous call awaits its reply) leaves at once, without waiting for the turn's end
 * (see MAX_BATCH_DECISIONS).
 *
 * Bounds: MAX_BATCH_DECISIONS and MAX_BATCH_ARGUMENTS per call. On a standalone server the queue
 * is filled as one call and each flush is that call; on Cluster a flush is grouped per master and
 * split into calls (splitIntoCalls), sent in order.
 *
 * Errors: a call that fails (no connection, OOM, a malformed reply) fails each of its decisions
 * with the same StoreError; an error inside one decision (WRONGTYPE) fails that decision alone.
 * Callers keep their own timeout budgets (core wraps each promise) and refund a decision that
 * landed after its budget as before.
 *
 * A decision's limits are read when its call is sent (at the turn's end at the latest), not when
 * it is made: callers must not change them in between (RedisStore never writes them; reusing one
 * frozen array is fine).
 */
import type { ConsumeResult, StoreLimit } from '../../core/store.js';
import { StoreError } from '../../core/errors.js';
import { type BatchDecision, type BatchOutcome, batchArgumentCount } from './bindings.js';

/**
 * Decisions per call, and when a call leaves on a standalone server: as soon as a turn has queued
 * this many, not at the turn's end (Cluster: see RedisStore). An HTTP server reads a turn's
 * requests one after another (~25 µs each on Koa); had they all waited for the turn's end, Redis
 * would idle while Node reads them, and Node would idle while Redis runs them all. A call that
 * leaves early runs while Node reads the next requests, and only the turn's last few decisions
 * make Node wait. Fewer decisions per call cost more calls (a call's own work, and a hot key read
 * again by each). Measured (interleaved rounds, medians, this project's 2-vCPU VM, Redis 7.0 on
 * one pinned core): Koa + RedisStore at 50 connections, share of bare Koa, 10 000 keys 0.65–0.69
 * at the turn's end, 0.81–0.87 at 12 and 16, 0.78–0.85 at 24 (the hand-written
 * one-EVALSHA-per-request floor: 0.81–0.82); one hot key 0.83–0.88 → 0.85–0.91 at 12 and 16, 0.95
 * at 24. Core bench, 64 callers: 169–173 k → 206–209 k decisions/s on a hot key,
 * 90–92 k → 115 k over 10 000 keys at 24 (16: no gain); 256 callers: 248–262 k → 235 k on a hot
 * key, 104–111 k → 110–116 k over 10 000 keys. An early call only starts Redis early if the
 * client writes it at once: a batch call asks it to (RedisConnection.flushWrites, which a
 * standalone ioredis client implements), which took 256 callers to 306–343 k on a hot key and
 * 138 k over 10 000 keys. A call of 24 also holds Redis well under 1 ms: a decision costs
 * ~4–10 µs of script time.
 */
export const MAX_BATCH_DECISIONS = 24;

/**
 * Decisions per call on a standalone server while a call of the same store awaits its reply:
 * Redis is busy with this store's work, so a call sent sooner would only wait behind it; filled
 * up to this many (or until the argument bound, or the turn's end) it saves calls, each ~15–25 µs
 * of Redis time of its own. Measured against 24 (interleaved runs, Redis 7.0 on one pinned
 * core): core bench, 256 callers, one hot key 370–376 k → 424–451 k decisions/s (411 k at 48),
 * 10 000 keys 143.5 k → 149–150 k; Koa at 50 connections, 0.061 → 0.041–0.049 calls per request,
 * one hot key 4.6–5.4 → 4.0–4.8 µs of Redis CPU per request, req/s within noise. 64 single-limit
 * decisions are also what MAX_BATCH_ARGUMENTS holds, and stay under ~0.7 ms of Redis time.
 */
export const MAX_BUSY_BATCH_DECISIONS = 64;

/**
 * Arguments per call (keys and ARGV), counted at their most (batchArgumentCount: a decision whose
 * limit group no earlier one shares): a limit adds 5 (key, window, limit, cost, shape) and one
 * limit check of script time; a decision's header 3. A limit check costs 4–10 µs (measured when
 * every check of a busy log still trimmed it: 64 single-limit decisions took 0.6–0.75 ms per call,
 * 128 took 1.0–2.2 ms), so ~100 of them, what 512 arguments hold at most, keep a call near 1 ms:
 * 24 decisions of up to 3 limits fit. A decision with more limits than that (a route table of
 * hundreds of rules) goes alone in its call, as before batching: a decision is never split.
 */
export const MAX_BATCH_ARGUMENTS = 512;

export interface BatchBounds {
  readonly maxDecisions: number;
  readonly maxArguments: number;
  /** Standalone: decisions per call while a call awaits its reply. @default maxDecisions */
  readonly maxDecisionsWhileBusy?: number | undefined;
}

export const DEFAULT_BATCH_BOUNDS: BatchBounds = {
  maxDecisions: MAX_BATCH_DECISIONS,
  maxArguments: MAX_BATCH_ARGUMENTS,
  maxDecisionsWhileBusy: MAX_BUSY_BATCH_DECISIONS,
};

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
  /** Arguments of the queued decisions, counted as splitIntoCalls counts them. */
  #queuedArguments = 0;
  #scheduled = false;
  /** Standalone (`fullCall`): calls sent whose reply has not come back yet. */
  #callsAwaitingReply = 0;
  readonly #flushQueued = (): void => {
    this.#scheduled = false;
    this.flush();
  };
  /** Runs before the call's decisions are settled, so that the next ones see it answered. */
  readonly #callAnswered = (): void => {
    this.#callsAwaitingReply--;
  };

  /**
   * `dispatch` sends the decisions of one flush. A flush happens at the end of a turn and, with
   * `fullCall`, as soon as the queue fills one call: its decisions then leave while the turn goes
   * on (see MAX_BATCH_DECISIONS), and no flush ever holds more than one call: `dispatch` sends it
   * and calls `answered` once its reply (or failure) is in, before settling its decisions. Without
   * `fullCall` (Cluster), `dispatch` groups and splits a flush into calls itself (splitIntoCalls).
   */
  constructor(
    private readonly dispatch: (decisions: PendingDecision[], answered: () => void) => void,
    private readonly fullCall?: BatchBounds | undefined,
  ) {}

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
    this.#queuedArguments = 0;
    const counted = this.fullCall !== undefined; // Cluster's flushes are not one call each
    if (counted) this.#callsAwaitingReply++;
    try {
      this.dispatch(decisions, this.#callAnswered);
    } catch (err) {
      if (counted) this.#callsAwaitingReply--;
      failAll(decisions, err); // a flush runs on its own (setImmediate): nothing may escape it
    }
  }

  #submit(kind: BatchDecision['kind'], limits: readonly StoreLimit[], cost: number, stamp: number | undefined): Promise<ConsumeResult | number> {
    return new Promise((resolve, reject) => {
      const decision: PendingDecision = { kind, limits, cost, stamp, resolve, reject };
      if (this.fullCall === undefined) this.#queue.push(decision);
      else if (this.#addToCall(decision, this.fullCall)) return;
      if (!this.#scheduled) {
        this.#scheduled = true;
        scheduleFlush(this.#flushQueued);
      }
    });
  }

  /**
   * Queues `decision` in the call being filled: that call is sent first when the decision would
   * not fit in it, and with the decision when it is then full (at maxDecisions, or at
   * maxDecisionsWhileBusy while a call awaits its reply). True when the decision was sent.
   */
  #addToCall(decision: PendingDecision, bounds: BatchBounds): boolean {
    const size = batchArgumentCount(decision);
    if (this.#queuedArguments + size > bounds.maxArguments) this.flush();
    this.#queuedArguments += size;
    const full = this.#callsAwaitingReply > 0 ? (bounds.maxDecisionsWhileBusy ?? bounds.maxDecisions) : bounds.maxDecisions;
    if (this.#queue.push(decision) < full) return false;
    this.flush();
    return true;
  }
}

/**
 * Cluster: `decisions` split into calls of at most `bounds.maxDecisions` decisions and
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
