/**
 * One rate-limit decision = one store call: every limit of every part (client key + its limits)
 * is checked and recorded all-or-nothing, within the `timeout` budget. Store failures never throw
 * from here: they become a decision that follows `onStoreError` and carries the reason.
 */
import { ConfigError, StoreError, StoreTimeoutError } from './errors.js';
import { DEFAULTS } from './defaults.js';
import { formatValue } from './duration.js';
import { digest } from './store-keys.js';
import { checkConsumeResult } from './store-replies.js';
import { reportStoreFailure, reportStoreSuccess, toStoreError, withTimeout, type FailureMode, type Logger } from './store-call.js';
import type { Decision, Policy } from './decision.js';
import type { ConsumeResult, Store, StoreLimit } from './store.js';

/** One client key and the limits that apply to it. Its logs live at `limitKey(prefix, id, policy.name)`. */
export interface LimitPart {
  readonly id: string;
  readonly prefix: string;
  readonly policies: readonly Policy[];
  /**
   * Units the request takes on this part's limits (a route rule's own cost), integer ≥ 1, already
   * validated. @default the `cost` passed to `decide()`
   */
  readonly cost?: number | undefined;
}

export type StoreErrorHandler = (err: StoreError | StoreTimeoutError) => FailureMode;

export interface StoreCallOptions {
  store: Store;
  timeoutMs: number;
  logger: Logger;
  onStoreError: FailureMode | StoreErrorHandler;
  /** Attach a refund ticket to allowed decisions (limiters with a `refund` option, `RateLimiter`). */
  refundable?: boolean | undefined;
}

/** What `refund()` needs to give back exactly one decision's cost. */
interface RefundTicket {
  readonly store: Store;
  /** Limits of parts with their own cost carry it, so each log gets back exactly what it took. */
  readonly limits: readonly StoreLimit[];
  readonly cost: number;
  readonly stamp: number;
  /** Set by the first refund, so later ones are no-ops (kept here: the decision may be frozen). */
  refunded: boolean;
}

/**
 * Where a decision keeps its refund ticket: a module-private symbol, non-enumerable, so the
 * Decision stays a plain value (Object.keys, JSON, spread and deep equality never see it) and
 * nobody else can forge or read a ticket. Measured ~0.1 µs per decision, against ~1 µs (with its
 * GC cost) for a WeakMap entry.
 */
const REFUND_TICKET = Symbol('ratelock.refundTicket');

type Ticketed = Decision & { readonly [REFUND_TICKET]?: RefundTicket };

/**
 * Checks (`'peek'`) or checks and records (`'consume'`) a request against every limit of every
 * part in ONE store call; each part's limits take the part's own `cost`, else `cost`. Costs must
 * already be valid (`validateCost`): every caller checks them where it reads them, so they are
 * not checked again here.
 *
 * - The deciding policy is the store's `index`: the blocking limit with the longest wait, else the
 *   one with the fewest remaining. `decision.key` is the id of the part it belongs to.
 * - `retryAfterMs` when a cost can never fit (cost > limit) is that limit's window: retrying sooner
 *   is pointless, and HTTP clients get a finite `Retry-After`.
 * - Store failure or timeout: `onStoreError` `'open'` → allowed, `remaining` = limit; `'closed'` →
 *   refused, `remaining` 0, `retryAfterMs` = `DEFAULTS.storeErrorRetryAfterMs` (1 s). Either way
 *   `reason` is `'store-error'` / `'store-timeout'`, `error` is set, and the deciding policy is the
 *   first one (we know nothing about the others).
 * - A consume that timed out but is recorded later is given back (see `refundLate`).
 *
 * `policies` is every policy of `parts` in order; callers that keep that concatenation (route
 * tables, per set of matching rules) pass it so it is not rebuilt per request.
 *
 * Rejects only on programming errors: no limits at all.
 */
export async function decide(
  parts: readonly LimitPart[],
  cost: number,
  mode: 'consume' | 'peek',
  options: StoreCallOptions,
  policies: readonly Policy[] = concatPolicies(parts),
): Promise<Decision> {
  const limits = storeLimits(parts);
  // callStore's steps, unrolled: a handler-form onStoreError is asked once per failure, and its
  // answer both words the outage log and decides the request.
  const { store } = options;
  let result: ConsumeResult;
  try {
    const call = (mode === 'consume' ? store.consume(limits, cost) : store.peek(limits, cost)).then((reply) => checkConsumeResult(mode, reply));
    result = await withTimeout(call, options.timeoutMs, mode === 'consume' ? (late) => refundLate(store, limits, cost, late) : undefined);
    if (policies[result.index] === undefined) {
      throw new StoreError(`store returned limit index ${formatValue(result.index)} for ${policies.length} limits`);
    }
  } catch (err) {
    return failureDecision(toStoreError(err), parts[0]!, policies, options);
  }
  reportStoreSuccess(store, options.logger);
  const policy = policies[result.index]!;
  const decision: Decision = {
    allowed: result.allowed,
    limit: policy.limit,
    remaining: result.remaining,
    resetMs: result.resetMs,
    retryAfterMs: result.allowed ? 0 : result.retryAfterMs < 0 ? policy.windowMs : Math.max(1, result.retryAfterMs),
    key: ownerOf(parts, result.index).id,
    policy,
    policies,
    reason: result.allowed ? 'allowed' : 'limited',
  };
  if (options.refundable === true && mode === 'consume' && result.allowed && result.stamp > 0) {
    const ticket: RefundTicket = { store, limits, cost, stamp: result.stamp, refunded: false };
    Object.defineProperty(decision, REFUND_TICKET, { value: ticket });
  }
  return decision;
}

/**
 * Gives back exactly the cost `decision` recorded (its own log entries, never newer ones).
 * A no-op for decisions that recorded nothing (blocked, peeked, store failure) and on a second
 * call. Store failures are logged (once per outage), never thrown.
 */
export async function refund(decision: Decision, options: StoreCallOptions): Promise<void> {
  const ticket = (decision as Ticketed)[REFUND_TICKET];
  if (ticket === undefined || ticket.refunded) return;
  // Before any await: a second refund of the same decision (even a concurrent one) is a no-op.
  ticket.refunded = true;
  try {
    await withTimeout(ticket.store.refund(ticket.limits, ticket.cost, ticket.stamp), options.timeoutMs);
    reportStoreSuccess(ticket.store, options.logger);
  } catch (err) {
    const failure = toStoreError(err);
    reportStoreFailure(ticket.store, failure, options.logger);
    // The response is already sent, so the answer changes nothing; a handler still hears of every
    // failure (it may count them). A bad handler surfaces on the next decision.
    try {
      resolveFailureMode(options.onStoreError, failure);
    } catch {
      // ignored: see above
    }
  }
}

/**
 * A consume that timed out was answered as a store failure, yet the store may still record it later
 * (a stalled Redis resuming, or ioredis re-sending it after a reconnect). Nobody was counted for it,
 * so give it back: otherwise every outage would leave phantom entries that block real requests.
 */
function refundLate(store: Store, limits: readonly StoreLimit[], cost: number, late: ConsumeResult): void {
  if (!late.allowed || late.stamp <= 0) return;
  store.refund(limits, cost, late.stamp).catch(() => undefined); // best effort: the store just came back
}

/** Every policy of every part, in order (the part's own array when there is one part). */
function concatPolicies(parts: readonly LimitPart[]): readonly Policy[] {
  if (parts.length === 1) return parts[0]!.policies;
  const policies: Policy[] = [];
  for (const part of parts) policies.push(...part.policies);
  return policies;
}

/**
 * The store limits of every part, in order, each with its part's own cost when it has one. Keys
 * are laid out as `limitKey(prefix, id, name)` (keyspace.ts), with each id hashed once even when
 * consecutive parts share it (route rules with the same key spec).
 */
function storeLimits(parts: readonly LimitPart[]): StoreLimit[] {
  const limits: StoreLimit[] = [];
  let hashedId: string | undefined;
  let tag = '';
  for (const part of parts) {
    if (part.id !== hashedId) {
      hashedId = part.id;
      tag = `{${digest(part.id)}}`;
    }
    const base = part.prefix + tag;
    const { cost } = part;
    for (const policy of part.policies) {
      const key = `${base}:${policy.name}`;
      // No `cost` field at all without one, so single-cost calls keep the limits' shape as before.
      const { windowMs, limit } = policy;
      limits.push(cost === undefined ? { key, windowMs, limit } : { key, windowMs, limit, cost });
    }
  }
  if (limits.length === 0) throw new ConfigError('decide() needs at least one limit; got none');
  return limits;
}

/** The part whose policies hold the flat limit `index`. */
function ownerOf(parts: readonly LimitPart[], index: number): LimitPart {
  let first = 0;
  for (const part of parts) {
    if (index < first + part.policies.length) return part;
    first += part.policies.length;
  }
  return parts[0]!;
}

function failureDecision(
  error: StoreError | StoreTimeoutError,
  part: LimitPart,
  policies: readonly Policy[],
  options: StoreCallOptions,
): Decision {
  const failureMode = resolveFailureMode(options.onStoreError, error);
  reportStoreFailure(options.store, error, options.logger);
  const policy = policies[0]!;
  const open = failureMode === 'open';
  return {
    allowed: open,
    limit: policy.limit,
    remaining: open ? policy.limit : 0,
    resetMs: 0,
    retryAfterMs: open ? 0 : DEFAULTS.storeErrorRetryAfterMs,
    key: part.id,
    policy,
    policies,
    reason: error instanceof StoreTimeoutError ? 'store-timeout' : 'store-error',
    error,
  };
}

/** `onStoreError` as a mode; a handler returning anything else is a ConfigError naming the option. */
export function resolveFailureMode(onStoreError: FailureMode | StoreErrorHandler, error: StoreError | StoreTimeoutError): FailureMode {
  if (typeof onStoreError !== 'function') return onStoreError;
  const mode = onStoreError(error);
  if (mode !== 'open' && mode !== 'closed') {
    throw new ConfigError(`onStoreError must return 'open' or 'closed'; got ${formatValue(mode)}`);
  }
  return mode;
}
