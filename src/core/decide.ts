/**
 * One rate-limit decision = one store call: every limit of every part (client key + its limits)
 * is checked and recorded all-or-nothing, within the `timeout` budget. Store failures never throw
 * from here: they become a decision that follows `onStoreError` and carries the reason.
 */
import { ConfigError, StoreError, StoreTimeoutError } from './errors.js';
import { DEFAULTS } from './defaults.js';
import { describe } from './duration.js';
import { taggedBase } from './keyspace.js';
import { validateCost } from './limits.js';
import { reportStoreFailure, reportStoreSuccess, toStoreError, withTimeout, type FailureMode, type Logger } from './store-call.js';
import type { Decision, Policy } from './decision.js';
import type { ConsumeResult, Store, StoreLimit } from './store.js';

/** One client key and the limits that apply to it. Its logs live at `limitKey(prefix, id, policy.name)`. */
export interface LimitPart {
  readonly id: string;
  readonly prefix: string;
  readonly policies: readonly Policy[];
}

export type StoreErrorHandler = (err: StoreError | StoreTimeoutError) => FailureMode;

export interface StoreCallOptions {
  store: Store;
  timeoutMs: number;
  logger: Logger;
  onStoreError: FailureMode | StoreErrorHandler;
}

/** What `refund()` needs to give back exactly one decision's cost. */
interface RefundTicket {
  readonly store: Store;
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
 * Checks (`'peek'`) or checks and records (`'consume'`) a request of `cost` against every limit of
 * every part in ONE store call.
 *
 * - The deciding policy is the store's `index`: the blocking limit with the longest wait, else the
 *   one with the fewest remaining. `decision.key` is the id of the part it belongs to.
 * - `retryAfterMs` when a cost can never fit (cost > limit) is that limit's window: retrying sooner
 *   is pointless, and HTTP clients get a finite `Retry-After`.
 * - Store failure or timeout: `onStoreError` `'open'` → allowed, `remaining` = limit; `'closed'` →
 *   refused, `remaining` 0, `retryAfterMs` = `DEFAULTS.storeErrorRetryAfterMs` (1 s). Either way
 *   `reason` is `'store-error'` / `'store-timeout'`, `error` is set, and the deciding policy is the
 *   first one (we know nothing about the others).
 *
 * Rejects only on programming errors: no limits, or a cost that `validateCost` refuses.
 */
export async function decide(
  parts: readonly LimitPart[],
  cost: number,
  mode: 'consume' | 'peek',
  options: StoreCallOptions,
): Promise<Decision> {
  validateCost(cost, 'cost');
  const { limits, policies, owners } = flatten(parts);
  // callStore's steps, unrolled: a handler-form onStoreError is asked once per failure, and its
  // answer both words the outage log and decides the request.
  const { store } = options;
  let result: ConsumeResult;
  try {
    const call = mode === 'consume' ? store.consume(limits, cost) : store.peek(limits, cost);
    result = await withTimeout(call, options.timeoutMs);
    if (policies[result.index] === undefined) {
      throw new StoreError(`store returned limit index ${describe(result.index)} for ${policies.length} limits`);
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
    key: (owners?.[result.index] ?? parts[0]!).id,
    policy,
    policies,
    reason: result.allowed ? 'allowed' : 'limited',
  };
  if (mode === 'consume' && result.allowed && result.stamp > 0) {
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
    let failureMode: FailureMode = DEFAULTS.limiterOnStoreError;
    try {
      failureMode = resolveFailureMode(options.onStoreError, failure);
    } catch {
      // A bad onStoreError handler surfaces on the next decision; a refund runs after the response.
    }
    reportStoreFailure(ticket.store, failure, options.logger, failureMode);
  }
}

/** Every limit of every part, in order, with the part each one belongs to (`owners`; omitted for one part). */
function flatten(parts: readonly LimitPart[]): { limits: StoreLimit[]; policies: readonly Policy[]; owners?: readonly LimitPart[] } {
  if (parts.length === 1) {
    // The common case: no concatenation, the part's own policies array is the decision's.
    const part = parts[0]!;
    if (part.policies.length === 0) throw new ConfigError(`decide() needs at least one limit; part "${part.id}" has none`);
    const base = taggedBase(part.prefix, part.id);
    const limits: StoreLimit[] = [];
    for (const policy of part.policies) limits.push(storeLimit(base, policy));
    return { limits, policies: part.policies };
  }
  const limits: StoreLimit[] = [];
  const policies: Policy[] = [];
  const owners: LimitPart[] = [];
  for (const part of parts) {
    const base = taggedBase(part.prefix, part.id);
    for (const policy of part.policies) {
      limits.push(storeLimit(base, policy));
      policies.push(policy);
      owners.push(part);
    }
  }
  if (limits.length === 0) throw new ConfigError('decide() needs at least one limit; got none');
  return { limits, policies, owners };
}

/** Same key layout as `limitKey(prefix, id, name)`, with the id hashed once per part, not per limit. */
function storeLimit(base: string, policy: Policy): StoreLimit {
  return { key: `${base}:${policy.name}`, windowMs: policy.windowMs, limit: policy.limit };
}

function failureDecision(
  error: StoreError | StoreTimeoutError,
  part: LimitPart,
  policies: readonly Policy[],
  options: StoreCallOptions,
): Decision {
  const failureMode = resolveFailureMode(options.onStoreError, error);
  reportStoreFailure(options.store, error, options.logger, failureMode);
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
    throw new ConfigError(`onStoreError must return 'open' or 'closed'; got ${describe(mode)}`);
  }
  return mode;
}
