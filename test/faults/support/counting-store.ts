/**
 * A Store seen through a counting lens: how many calls each method got, and how many of them
 * failed without ever reaching Redis (StoreError.notSent: the client was not connected, or the
 * connection stalled). With INFO commandstats on the server, that tells how many commands Redis executed
 * twice (ioredis re-sending a command whose reply was lost with its connection).
 */
import { StoreError, type Store } from '../../../src/index.js';

export interface CallCounts {
  /** Calls per Store method. */
  readonly calls: Map<string, number>;
  /** Calls rejected before they were sent. */
  readonly notSent: Map<string, number>;
  /** Total calls that may have reached Redis (sent). */
  sent(): number;
}

/** The Store methods that are one FCALL each on a standalone server. */
const STORE_CALLS = new Set([
  'consume', 'peek', 'refund', 'reset',
  'acquireLock', 'extendLock', 'releaseLock',
  'beginIdempotent', 'extendIdempotent', 'completeIdempotent', 'abortIdempotent',
]);

export function isNotSent(err: unknown): boolean {
  return err instanceof StoreError && err.notSent;
}

export function countingStore<S extends Store>(store: S): { store: S; counts: CallCounts } {
  const calls = new Map<string, number>();
  const notSent = new Map<string, number>();
  const bump = (map: Map<string, number>, name: string) => map.set(name, (map.get(name) ?? 0) + 1);
  const wrappers = new Map<PropertyKey, unknown>();
  const proxy = new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      if (!STORE_CALLS.has(property)) return (value as (...args: unknown[]) => unknown).bind(target);
      let wrapper = wrappers.get(property);
      if (!wrapper) {
        wrapper = (...args: unknown[]) => {
          bump(calls, property);
          const result: unknown = Reflect.apply(value, target, args);
          if (result instanceof Promise) {
            result.catch((err: unknown) => {
              if (isNotSent(err)) bump(notSent, property);
            });
          }
          return result;
        };
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
  const sum = (map: Map<string, number>) => [...map.values()].reduce((a, b) => a + b, 0);
  return { store: proxy, counts: { calls, notSent, sent: () => sum(calls) - sum(notSent) } };
}
