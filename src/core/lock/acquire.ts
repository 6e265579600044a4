/**
 * Taking a lock: `SET NX PX` + fence in one store call, polled while busy. The per-request entry
 * behind `LockGuard.acquire()` and `withLock`, taking options already parsed, so a request does
 * not re-validate an options object.
 */
import { LockBusyError } from '../errors.js';
import { lockKeys } from '../store-keys.js';
import { checkFlag, checkLockAcquire } from '../store-replies.js';
import type { LockAcquireResult, LockStore } from '../store.js';
import { Lease, type LockLease } from './lease.js';
import { callLeaseStore, requestLease, type LeaseSettings } from './lease-guard.js';

/**
 * Takes the lock on `key` (already validated) for `settings.ttlMs`, waiting up to `waitMs` for a holder.
 * @throws LockBusyError when another holder keeps it (after `waitMs`); StoreError / StoreTimeoutError
 *   when the store fails; `signal.reason` when `signal` aborts.
 */
export async function acquireLock(settings: LeaseSettings<LockStore>, key: string, waitMs: number, signal?: AbortSignal): Promise<LockLease> {
  const keys = lockKeys(settings.prefix, key);
  const { store, ttlMs } = settings;
  const { result, token, sentAt } = await requestLease<LockAcquireResult>(
    settings,
    {
      ask: (askToken) => store.acquireLock(keys, askToken, ttlMs).then(checkLockAcquire),
      isGranted: (answer) => answer.acquired,
      busyFor: (answer) => (answer.acquired ? undefined : answer.retryAfterMs),
      giveBack: (askToken) => store.releaseLock(keys, askToken),
    },
    waitMs,
    signal,
  );
  if (!result.acquired) throw new LockBusyError(key, result.retryAfterMs);
  return new Lease({
    key,
    token,
    fence: result.fence,
    ttlMs,
    maxHoldMs: settings.maxHoldMs,
    acquiredAt: sentAt,
    operations: {
      extend: (extendMs) => callLeaseStore(settings, () => store.extendLock(keys, token, extendMs).then((flag) => checkFlag('extendLock', flag))),
      release: () => callLeaseStore(settings, () => store.releaseLock(keys, token).then((flag) => checkFlag('releaseLock', flag))),
    },
  });
}
