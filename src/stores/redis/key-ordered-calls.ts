/**
 * Order for clients that do not keep the order of concurrent commands (GLIDE; see
 * StoreClient.keepsCommandOrder in client.ts and the file comment of batch-dispatch.ts).
 */
import type { RedisConnection, StoreClient } from './client.js';
import type { ScriptRunner } from './script-runner.js';

/**
 * Runs a call on `keysOf()` (sent to `via`, else by its first key): at once when the client keeps
 * the order of its commands (the keys are then never listed), else after the earlier calls on
 * its keys (KeyOrderedCalls).
 */
export type CallOrder = <T>(keysOf: () => readonly string[], via: RedisConnection | undefined, call: () => Promise<T>) => Promise<T>;

const atOnce: CallOrder = (_keysOf, _via, call) => call();

export function callOrder(client: StoreClient, runner: ScriptRunner): CallOrder {
  if (client.keepsCommandOrder) return atOnce;
  const ordered = new KeyOrderedCalls();
  return (keysOf, via, call) => {
    const keys = keysOf();
    return ordered.run(keys, call, () => runner.stalledGate(via, keys[0]!)?.notSent());
  };
}

/** A call waiting for the calls before it on its keys. */
interface WaitingCall {
  readonly keys: readonly string[];
  readonly start: () => void;
}

/**
 * Keeps calls that share a key in the order they were made, for a client that does not keep the
 * order of concurrent commands: a call waits while an earlier call still in flight, or still
 * waiting, names one of its keys; calls on other keys go at once, so a load over many keys keeps
 * its pipelining, and a server that stops answering holds back only the calls on its keys. A
 * wait ends when the calls before it settle: answered, failed, or given up by the client's own
 * request timeout. GLIDE standalone, 256 callers over 10 000 keys: ~144 k decisions/s unordered,
 * ~90 k with one call in flight at a time, ~150 k this way (one hot key ~159 k).
 */
export class KeyOrderedCalls {
  /** Keys of the calls in flight, with how many of them name each. */
  readonly #inFlight = new Map<string, number>();
  /** Keys of the waiting calls, likewise: a later call on one of them waits behind them. */
  readonly #held = new Map<string, number>();
  #waiting: WaitingCall[] = [];

  /**
   * `stalled`: the error of a call failed unsent when its server has stopped answering
   * (InFlightGate.notSent), else undefined. A call that would wait then fails at once with it
   * rather than wait out its budget behind calls that may not be answered soon; it is never sent,
   * so nothing runs out of order. (A call on free keys goes as usual: at a stalled server it fails
   * at once too, or goes as its probe.)
   */
  run<T>(keys: readonly string[], call: () => Promise<T>, stalled?: () => Error | undefined): Promise<T> {
    if (!named(this.#inFlight, keys) && !named(this.#held, keys)) return this.#start(keys, call);
    const notSent = stalled?.();
    if (notSent !== undefined) return Promise.reject(notSent);
    count(this.#held, keys, 1);
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ keys, start: () => void this.#start(keys, call).then(resolve, reject) });
    });
  }

  #start<T>(keys: readonly string[], call: () => Promise<T>): Promise<T> {
    count(this.#inFlight, keys, 1);
    let result: Promise<T>;
    try {
      result = call();
    } catch (err) {
      result = Promise.reject(err);
    }
    const settled = (): void => this.#settled(keys);
    result.then(settled, settled);
    return result;
  }

  /** Starts, in the order made, each waiting call whose keys no call in flight or before it names. */
  #settled(keys: readonly string[]): void {
    count(this.#inFlight, keys, -1);
    if (this.#waiting.length === 0) return;
    const still: WaitingCall[] = [];
    const ready: WaitingCall[] = [];
    const before = new Map<string, number>();
    for (const waiting of this.#waiting) {
      if (named(this.#inFlight, waiting.keys) || named(before, waiting.keys)) {
        still.push(waiting);
      } else {
        count(this.#held, waiting.keys, -1);
        ready.push(waiting);
      }
      count(before, waiting.keys, 1); // a later call on its keys stays behind it
    }
    this.#waiting = still;
    for (const waiting of ready) waiting.start();
  }
}

/** Whether `counts` names one of `keys`. */
function named(counts: ReadonlyMap<string, number>, keys: readonly string[]): boolean {
  for (const key of keys) if (counts.has(key)) return true;
  return false;
}

/** Adds `by` to the count of each of `keys`, dropping counts that reach 0. */
function count(counts: Map<string, number>, keys: readonly string[], by: number): void {
  for (const key of keys) {
    const total = (counts.get(key) ?? 0) + by;
    if (total === 0) counts.delete(key);
    else counts.set(key, total);
  }
}
