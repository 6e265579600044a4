/**
 * How a contender waits for a busy lock or an in-flight idempotency record: it polls the store
 * with jittered, growing delays (never a busy-spin), at most one call per MIN_POLL_INTERVAL_MS,
 * and never sleeps past the moment the holder's lease runs out.
 */
import { performance } from 'node:perf_hooks';

/** Floor between two polls of one waiter: at most 20 store calls per second (plus one at the deadline). */
export const MIN_POLL_INTERVAL_MS = 50;
/** Ceiling of the backoff, so a waiter notices a release within this many ms. */
export const MAX_POLL_INTERVAL_MS = 250;

/** Monotonic milliseconds: leases and waits must not follow wall-clock steps. */
export function monotonicNow(): number {
  return performance.now();
}

/**
 * ms to sleep before poll number `attempt + 1`, or `undefined` when the wait is over.
 *
 * Full jitter between the floor and an exponential backoff (50, 100, 200, 250 ms…) spreads
 * contenders apart; the delay is cut to the holder's remaining lease (a lease about to expire is
 * retried right after it does) and to the time left to wait (one last poll at the deadline).
 */
export function nextPollDelay(attempt: number, holderLeftMs: number, waitLeftMs: number, random: () => number = Math.random): number | undefined {
  if (!(waitLeftMs >= 1)) return undefined;
  const backoff = Math.min(MAX_POLL_INTERVAL_MS, MIN_POLL_INTERVAL_MS * 2 ** Math.min(attempt, 10));
  let delay = MIN_POLL_INTERVAL_MS + random() * (backoff - MIN_POLL_INTERVAL_MS);
  if (holderLeftMs >= 0) delay = Math.min(delay, Math.max(MIN_POLL_INTERVAL_MS, holderLeftMs + 1));
  return Math.ceil(Math.min(delay, waitLeftMs));
}

/** How `retryUntil` retries. */
export interface RetryPlan {
  /** Delay before the first retry; each next one waits `factor` times longer. */
  readonly firstDelayMs: number;
  readonly factor: number;
  /** Longest delay between two tries. */
  readonly maxDelayMs: number;
  /** Monotonic ms (monotonicNow) no retry may start at or after. */
  readonly until: number;
  /** Errors worth another attempt; any other is thrown at once. */
  readonly retryable: (err: unknown) => boolean;
  /** false: the timers are unref'd, so a retry nobody awaits never keeps the process alive. */
  readonly keepAlive: boolean;
}

/**
 * Runs `attempt` until it succeeds or fails with an error `plan.retryable` refuses, retrying with
 * growing delays while the next try would start before `plan.until`; then rejects with the last
 * error. The one retry loop of the lease code: giving back an unused grant, completing a record.
 */
export async function retryUntil<T>(attempt: () => Promise<T>, plan: RetryPlan): Promise<T> {
  for (let delayMs = plan.firstDelayMs; ; delayMs = Math.min(delayMs * plan.factor, plan.maxDelayMs)) {
    try {
      return await attempt();
    } catch (err) {
      if (!plan.retryable(err) || monotonicNow() + delayMs >= plan.until) throw err;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        if (!plan.keepAlive) timer.unref();
      });
      if (monotonicNow() >= plan.until) throw err; // the timer fired late (a loaded machine): no try past `until`
    }
  }
}

/** Resolves after `ms`, or rejects with `signal.reason` as soon as `signal` aborts (the timer is cleared). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    // Not unref()'d: a caller awaiting a lock must keep the process alive; the wait is bounded.
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Calls `attempt` until `busyFor(result)` says the key is free or settled (`undefined`), or the
 * wait is over; returns the last result. `busyFor` returns the holder's remaining lease in ms
 * (negative when unknown) while the key is busy.
 */
export async function pollWhileBusy<R>(
  attempt: () => Promise<R>,
  busyFor: (result: R) => number | undefined,
  options: { waitMs: number; signal?: AbortSignal | undefined },
): Promise<R> {
  const deadline = monotonicNow() + options.waitMs;
  for (let n = 0; ; n++) {
    const result = await attempt();
    const holderLeftMs = busyFor(result);
    if (holderLeftMs === undefined) return result;
    const delay = nextPollDelay(n, holderLeftMs, deadline - monotonicNow());
    if (delay === undefined) return result;
    await sleep(delay, options.signal);
  }
}
