/**
 * Defensive parsing of script replies: every reply's shape and types are checked, and a malformed
 * one is a StoreError naming the script (a foreign library of the same name, a proxy mangling
 * replies), never a silently wrong result.
 */
import { StoreError } from '../../core/errors.js';
import { formatValue } from '../../core/duration.js';
import type { ConsumeResult, IdempotencyBeginResult, LockAcquireResult, StoreLimit, StoredResponse } from '../../core/store.js';
import { scriptFailure } from './client.js';
import { decodeMsgpackArray, type MsgpackValue } from './msgpack.js';

function malformed(operation: string, reply: unknown, why: string): StoreError {
  const shown = Array.isArray(reply) ? formatValue(reply.map((part) => (Buffer.isBuffer(part) ? part.toString('latin1') : part))) : formatValue(reply);
  return new StoreError(`malformed reply from Redis script ${operation} (${why}): ${shown}`);
}

function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** How many integers check_limits (lua/consume.lua) answers per consume / peek. */
const CONSUME_REPLY_LENGTH = 7;

/** `{ allowed, index, remaining, resetMs, retryAfterMs, stamp, nextQuotaMs }` as seven integers. */
export function parseConsume(reply: unknown, operation: string, limitCount: number): ConsumeResult {
  if (!Array.isArray(reply) || reply.length !== CONSUME_REPLY_LENGTH) throw malformed(operation, reply, 'expected 7 integers');
  return consumeAt(reply, 0, operation, limitCount);
}

/** The seven integers of a consume / peek reply at `reply[at ..]` (a batch reply holds several). */
function consumeAt(reply: readonly unknown[], at: number, operation: string, limitCount: number): ConsumeResult {
  const allowed = reply[at];
  const index = reply[at + 1];
  const remaining = reply[at + 2];
  const resetMs = reply[at + 3];
  const retryAfterMs = reply[at + 4];
  const stamp = reply[at + 5];
  const nextQuotaMs = reply[at + 6];
  if (
    !isInteger(allowed) ||
    !isInteger(index) ||
    !isInteger(remaining) ||
    !isInteger(resetMs) ||
    !isInteger(retryAfterMs) ||
    !isInteger(stamp) ||
    !isInteger(nextQuotaMs)
  ) {
    throw malformed(operation, reply, at === 0 ? 'expected 7 integers' : `expected 7 integers at ${at}`);
  }
  if ((allowed !== 0 && allowed !== 1 && allowed !== 2) || index < 0 || index >= limitCount) {
    throw malformed(operation, reply, `expected allowed 0|1|2 and index in [0, ${limitCount - 1}]`);
  }
  const result: ConsumeResult = { allowed: allowed === 1, index, remaining, resetMs, retryAfterMs, stamp, nextQuotaMs };
  return allowed === 2 ? { ...result, boxed: true } : result;
}

/** What a batch call sends per decision (see bindings.ts), as far as reading its reply needs. */
export interface BatchedDecision {
  readonly kind: 'consume' | 'peek' | 'refund';
  readonly limits: readonly Pick<StoreLimit, 'key' | 'windowMs' | 'algorithm'>[];
}

/** The head of a consume allowed on one sliding log, answered in 4 values (see oneLogAllowedAt). */
const ONE_LOG_ALLOWED = 3;
const ONE_LOG_REPLY_LENGTH = 4;

/** A decision's outcome in a batch reply: its result, or the error that failed it alone. */
export type BatchOutcome = ConsumeResult | number | StoreError;

/**
 * A batch reply, an array packed with MessagePack (read with callBuffer): the store time the call
 * decided at, then per decision in order: consume / peek seven integers or a one-log reply (see
 * oneLogAllowedAt), refund one integer, or a string (the message of the error that failed that
 * decision alone, e.g. WRONGTYPE); consumes allowed together in a run, one run reply (see
 * allowedRunAt). Any other shape fails the whole call.
 */
export function parseBatch(packed: unknown, operation: string, decisions: readonly BatchedDecision[]): BatchOutcome[] {
  if (!Buffer.isBuffer(packed)) throw malformed(operation, packed, 'expected a MessagePack bulk string');
  let reply: MsgpackValue[];
  try {
    reply = decodeMsgpackArray(packed);
  } catch (err) {
    throw malformed(operation, packed.toString('latin1'), `not a MessagePack array: ${(err as Error).message}`);
  }
  const now = reply[0];
  if (!isInteger(now) || now < 0) throw malformed(operation, reply, 'expected the store time first');
  const outcomes: BatchOutcome[] = new Array<BatchOutcome>(decisions.length);
  let at = 1;
  for (let i = 0; i < decisions.length; i++) {
    const decision = decisions[i]!;
    const head: unknown = reply[at];
    if (typeof head === 'string') {
      // The cause carries Redis's message alone, as a client's error reply would.
      outcomes[i] = scriptFailure(decision.kind, head, new Error(head));
      at += 1;
    } else if (decision.kind === 'refund') {
      if (!isInteger(head) || head < 0) throw malformed(operation, reply, `expected a count at ${at}`);
      outcomes[i] = head;
      at += 1;
    } else if (isInteger(head) && head < 0) {
      i = allowedRunAt(reply, at, now, operation, decisions, i, outcomes);
      at += 1 + replyLength(reply[at + 1]);
    } else {
      outcomes[i] = batchConsumeAt(reply, at, now, operation, decision);
      at += replyLength(head);
    }
  }
  if (at !== reply.length) throw malformed(operation, reply, `expected ${at} values for ${decisions.length} decisions`);
  return outcomes;
}

/** How many values the consume / peek reply headed by `head` takes in a batch reply. */
function replyLength(head: unknown): number {
  return head === ONE_LOG_ALLOWED ? ONE_LOG_REPLY_LENGTH : CONSUME_REPLY_LENGTH;
}

/** A consume / peek reply in a batch reply, either form. */
function batchConsumeAt(reply: readonly unknown[], at: number, now: number, operation: string, decision: BatchedDecision): ConsumeResult {
  if (reply[at] === ONE_LOG_ALLOWED) return oneLogAllowedAt(reply, at, now, operation, decision);
  return consumeAt(reply, at, operation, decision.limits.length);
}

/**
 * A consume allowed on one sliding log (lua/consume.lua, one_log_allowed): ONE_LOG_ALLOWED,
 * remaining, stamp - now, stamp - oldest entry in the window (0 when the log was empty). With the
 * call's `now` and the limit's window they give the seven values check_limits answers.
 */
function oneLogAllowedAt(reply: readonly unknown[], at: number, now: number, operation: string, decision: BatchedDecision): ConsumeResult {
  const remaining = reply[at + 1];
  const sinceNow = reply[at + 2];
  const sinceOldest = reply[at + 3];
  if (!isInteger(remaining) || !isInteger(sinceNow) || !isInteger(sinceOldest) || remaining < 0 || sinceNow < 0 || sinceOldest < 0) {
    throw malformed(operation, reply, `expected 3 integers >= 0 after ${ONE_LOG_ALLOWED} at ${at}`);
  }
  const limit = decision.limits[0]!;
  const algorithm = limit.algorithm ?? 'sliding-log';
  if (decision.kind !== 'consume' || decision.limits.length !== 1 || algorithm !== 'sliding-log') {
    throw malformed(operation, reply, `a one-log reply at ${at} for a ${decision.kind} of ${decision.limits.length} limits (${algorithm})`);
  }
  // The oldest entry is in the window: oldest > now - window.
  if (sinceOldest > sinceNow + limit.windowMs) throw malformed(operation, reply, `an oldest entry out of the window at ${at}`);
  const resetMs = limit.windowMs + sinceNow;
  return { allowed: true, index: 0, remaining, resetMs, retryAfterMs: 0, stamp: now + sinceNow, nextQuotaMs: resetMs - sinceOldest };
}

/**
 * A run of allowed consumes answered as one (lua/consume.lua, consume_known_log): -count at
 * `reply[at]`, then the first one's reply (either form); each next one has one unit remaining
 * fewer and is otherwise the same. Fills the outcomes of decisions i .. i + count - 1 and returns
 * the last index. Every one of them must be a consume, and the run must be allowed.
 */
function allowedRunAt(reply: readonly unknown[], at: number, now: number, operation: string, decisions: readonly BatchedDecision[], i: number, outcomes: BatchOutcome[]): number {
  const count = -(reply[at] as number);
  const last = i + count - 1;
  if (count < 2 || last >= decisions.length) throw malformed(operation, reply, `a run of ${count} at ${at} for ${decisions.length - i} decisions`);
  const first = batchConsumeAt(reply, at + 1, now, operation, decisions[i]!);
  if (!first.allowed) throw malformed(operation, reply, `a run at ${at} that is not allowed`);
  const { index, remaining, resetMs, retryAfterMs, stamp, nextQuotaMs } = first;
  const key = decisions[i]!.limits[0]!.key;
  for (let d = 0; d < count; d++) {
    const decision = decisions[i + d]!;
    if (decision.kind !== 'consume') throw malformed(operation, reply, `a run at ${at} over a ${decision.kind}`);
    if (decision.limits[0]!.key !== key) throw malformed(operation, reply, `a run at ${at} over another key`);
    outcomes[i + d] = d === 0 ? first : { allowed: true, index, remaining: remaining - d, resetMs, retryAfterMs, stamp, nextQuotaMs };
  }
  return last;
}

/** An integer reply (counts, 0|1 flags). */
export function parseInteger(reply: unknown, operation: string): number {
  if (!isInteger(reply)) throw malformed(operation, reply, 'expected an integer');
  return reply;
}

/** A 0|1 integer reply. */
export function parseFlag(reply: unknown, operation: string): boolean {
  if (reply !== 0 && reply !== 1) throw malformed(operation, reply, 'expected 0 or 1');
  return reply === 1;
}

/** `{1, fence}` or `{0, ms left on the holder's lease}`. */
export function parseLockAcquire(reply: unknown, operation: string): LockAcquireResult {
  if (!Array.isArray(reply) || reply.length !== 2 || !reply.every(isInteger) || (reply[0] !== 0 && reply[0] !== 1)) {
    throw malformed(operation, reply, 'expected [0|1, integer]');
  }
  return reply[0] === 1 ? { acquired: true, fence: reply[1] as number } : { acquired: false, retryAfterMs: reply[1] as number };
}

function parseHeaders(operation: string, raw: Buffer): StoredResponse['headers'] {
  let headers: unknown;
  try {
    headers = JSON.parse(raw.toString('utf8'));
  } catch {
    throw malformed(operation, raw.toString('utf8'), 'stored headers are not JSON');
  }
  const valid =
    headers !== null &&
    typeof headers === 'object' &&
    !Array.isArray(headers) &&
    Object.values(headers).every(
      (value) => typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string')),
    );
  if (!valid) throw malformed(operation, raw.toString('utf8'), 'stored headers must map names to strings or string arrays');
  return headers as StoredResponse['headers'];
}

/** Reply of idempotency begin, read with callBuffer (the body is binary). */
export function parseIdempotencyBegin(reply: unknown, operation: string): IdempotencyBeginResult {
  if (!Array.isArray(reply) || reply.length === 0 || !Buffer.isBuffer(reply[0])) {
    throw malformed(operation, reply, 'expected [state, ...]');
  }
  const state = reply[0].toString('latin1');
  if (state === 'acquired' && reply.length === 2 && isInteger(reply[1])) return { state, fence: reply[1] };
  if (state === 'in-flight' && reply.length === 2 && isInteger(reply[1])) return { state, retryAfterMs: reply[1] };
  if (state === 'mismatch' && reply.length === 1) return { state };
  if (state === 'replay' && reply.length === 4 && isInteger(reply[1]) && Buffer.isBuffer(reply[2])) {
    const body: unknown = reply[3];
    if (body !== null && !Buffer.isBuffer(body)) throw malformed(operation, reply, 'body must be a bulk string or nil');
    return { state, response: { status: reply[1], headers: parseHeaders(operation, reply[2]), body } };
  }
  throw malformed(operation, reply, 'unknown state or arity');
}
