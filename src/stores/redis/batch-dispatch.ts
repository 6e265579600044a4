/**
 * Where the decisions of one flush (decision-batcher.ts) go, and in how many calls.
 *
 * Standalone: each flush is one call; the batcher already cut it to the bounds.
 *
 * Cluster: a script call's declared keys must share one slot, so decisions are grouped:
 * - by master (`'node'`, the default with Redis Functions): every decision whose slot one master
 *   serves (by the client's slot map) goes in one `batch_cross_slot` call on that master's own
 *   connection. The function is flagged `allow-cross-slot-keys` and declares no keys (Redis
 *   refuses declared keys of several slots even then), so Redis checks each key as the script
 *   touches it: a key this master does not serve right now (the slot map is stale, or the key's
 *   slot is migrating and the key has left, or is being imported here) fails its decision alone,
 *   before the decision wrote anything, and that decision is resent by slot, where the client
 *   follows MOVED / ASK / TRYAGAIN as for any command. A call the master refused as a whole
 *   before running it (its connection closed, a failover made it a replica, the cluster is down)
 *   is resent by slot as well. Both tell a client that keeps no slot map of its own in reach
 *   (GLIDE: the adapter's own) that its map is stale.
 * - by slot (`'slot'`: servers without Functions, a group of one, and every resend): one `batch`
 *   call per slot, sent through the Cluster client like any keyed command.
 * ioredis adds the client's `keyPrefix` to declared keys only, so the cross-slot call adds it to
 * the keys it carries in ARGV (and slots are those of the prefixed keys). Which master serves a
 * slot, and the masters' own connections, come from the client's view (client.ts, clients/).
 *
 * Order: the decisions of one call run in the order they were made (lua/batch.lua), and calls to
 * one server run in the order they were sent when the client keeps the order of its commands
 * (StoreClient.keepsCommandOrder). For a client that does not (GLIDE), a call waits while an
 * earlier one on any of its keys is in flight (KeyOrderedCalls). Otherwise two calls in flight
 * could run the other way round, and of two requests for the last unit the later one would get it.
 *
 * Why per master: with many keys (one hash tag per client) nearly every decision has a slot of
 * its own, so grouping by slot does not coalesce at all. Measured on a throwaway 3-master cluster
 * (Redis 7.0.15, the 3 masters pinned to one core, Node to the other; 256 callers over 10 000
 * keys, 3 interleaved rounds): per slot 0.995 calls per decision, 24–51 k decisions/s, Node
 * 19–22 µs and Redis 17–20 µs of CPU per decision (one call per decision before coalescing:
 * 28–43 k/s, 19–21 and 19–24 µs); per master 0.03–0.05 calls per decision, 47–87 k decisions/s,
 * Node 6–8 µs and Redis 11–14 µs per decision.
 */
import { errorMessage, type RedisConnection, type StoreClient } from './client.js';
import { type BatchDecision, type Binding, type BatchOutcome, bindings } from './bindings.js';
import { StoreError } from '../../core/errors.js';
import { type BatchBounds, type PendingDecision, failAll, settle, settleOne, splitIntoCalls } from './decision-batcher.js';
import { keySlot } from './hash-tag.js';
import type { ScriptRunner } from './script-runner.js';

export type ClusterGrouping = 'node' | 'slot';

type BatchBinding = Binding<readonly BatchDecision[], BatchOutcome[]>;

/**
 * Keeps calls that share a key in the order they were made, for a client that does not keep the
 * order of concurrent commands (see the file comment): a call waits while an earlier call still
 * in flight, or still waiting, names one of its keys; calls on other keys go at once, so a load
 * over many keys keeps its pipelining, and a server that stops answering holds back only the
 * calls on its keys. GLIDE standalone, 256 callers over 10 000 keys: ~144 k decisions/s
 * unordered, ~90 k with one call in flight at a time, ~150 k this way.
 */
/** A call waiting for the calls before it on its keys. */
interface WaitingCall {
  readonly keys: readonly string[];
  readonly start: () => void;
}

export class KeyOrderedCalls {
  /** Keys of the calls in flight, with how many of them name each. */
  readonly #inFlight = new Map<string, number>();
  /** Keys of the waiting calls, likewise: a later call on one of them waits behind them. */
  readonly #held = new Map<string, number>();
  #waiting: WaitingCall[] = [];

  /**
   * `stalled`: the call's server has stopped answering (InFlightGate.stalling): the call then goes
   * at once, to fail at once there (or be its probe) as any call would, rather than wait out its
   * budget behind a call that may never be answered. Only such a call can run out of order.
   */
  run<T>(keys: readonly string[], call: () => Promise<T>, stalled?: () => boolean): Promise<T> {
    if ((!named(this.#inFlight, keys) && !named(this.#held, keys)) || stalled?.() === true) return this.#start(keys, call);
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
    const before = new Map<string, number>();
    for (const waiting of this.#waiting) {
      if (named(this.#inFlight, waiting.keys) || named(before, waiting.keys)) {
        still.push(waiting);
        count(before, waiting.keys, 1);
      } else {
        count(this.#held, waiting.keys, -1);
        waiting.start();
      }
    }
    this.#waiting = still;
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

/** The keys a call names. */
function keysOf(decisions: readonly PendingDecision[]): string[] {
  const keys: string[] = [];
  for (const decision of decisions) for (const limit of decision.limits) keys.push(limit.key);
  return keys;
}

/**
 * How a dispatch runs a call (to `via`, else by its first key): at once, or after the earlier
 * calls on its keys (see KeyOrderedCalls).
 */
type CallRunner = <T>(decisions: readonly PendingDecision[], via: RedisConnection | undefined, call: () => Promise<T>) => Promise<T>;

const runAtOnce: CallRunner = (_decisions, _via, call) => call();

function callRunner(client: StoreClient, runner: ScriptRunner): CallRunner {
  if (client.keepsCommandOrder) return runAtOnce;
  const ordered = new KeyOrderedCalls();
  return (decisions, via, call) => ordered.run(keysOf(decisions), call, () => runner.stalling(via, decisions[0]!.limits[0]!.key));
}

/**
 * Sends one call and settles its decisions; `via` as in ScriptRunner.run; `answered` (standalone)
 * is told first, once the reply or the failure is in.
 */
function send(
  runCall: CallRunner,
  runner: ScriptRunner,
  binding: BatchBinding,
  decisions: PendingDecision[],
  via?: RedisConnection,
  answered?: () => void,
): void {
  runCall(decisions, via, () => runner.run(binding, decisions, via)).then(
    (outcomes) => {
      answered?.();
      settle(decisions, outcomes);
    },
    (err: unknown) => {
      answered?.();
      failAll(decisions, err);
    },
  );
}

/** Standalone: the flush's decisions as one call (the batcher flushes a call as soon as it is full). */
export function standaloneDispatch(runner: ScriptRunner, client: StoreClient): (decisions: PendingDecision[], answered: () => void) => void {
  const runCall = callRunner(client, runner);
  return (decisions, answered) => send(runCall, runner, bindings.batch, decisions, undefined, answered);
}

/** Errors of a cross-slot decision that mean "not here (now)": resend it by slot. */
const ELSEWHERE = /^(?:ERR )?(?:MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b|non local key/;
/**
 * Errors of a whole cross-slot call that mean it never ran, or that the Cluster client would
 * retry too (a closed connection): resend its decisions by slot. Clients say "not sent" in their
 * own words: ioredis `Connection is closed.`, node-redis `The client is closed` / `… offline`.
 */
const REFUSED = /^(?:MOVED|ASK|TRYAGAIN|CLUSTERDOWN|READONLY|LOADING|MASTERDOWN)\b|^Connection is closed|^The client is closed|^Client is offline/;

export function clusterDispatch(
  runner: ScriptRunner,
  client: StoreClient,
  bounds: BatchBounds,
  grouping: ClusterGrouping,
): (decisions: PendingDecision[]) => void {
  const topology = client.cluster!;
  // ioredis prefixes declared keys with the client's keyPrefix, so slots are those of prefixed
  // keys, and a cross-slot call (keys in ARGV) must add it itself. A Buffer prefix: by slot only.
  const keyPrefix = client.keyPrefix ?? '';
  const crossSlotAllowed = grouping === 'node' && client.keyPrefix !== undefined;
  const runCall = callRunner(client, runner);

  const bySlot = (decisions: PendingDecision[]): void => {
    const groups = new Map<number, PendingDecision[]>();
    for (const decision of decisions) {
      const slot = keySlot(keyPrefix + decision.limits[0]!.key);
      const group = groups.get(slot);
      if (group) group.push(decision);
      else groups.set(slot, [decision]);
    }
    for (const group of groups.values()) for (const call of splitIntoCalls(group, bounds)) send(runCall, runner, bindings.batch, call);
  };

  const crossSlot = (master: RedisConnection, decisions: PendingDecision[]): void => {
    runCall(decisions, master, () => runner.run(bindings.batchCrossSlot, { decisions, keyPrefix }, master)).then(
      (outcomes) => {
        let elsewhere: PendingDecision[] | undefined;
        for (let i = 0; i < decisions.length; i++) {
          const outcome = outcomes[i]!;
          if (outcome instanceof StoreError && ELSEWHERE.test(errorMessage(outcome.cause))) (elsewhere ??= []).push(decisions[i]!);
          else settleOne(decisions[i]!, outcome);
        }
        if (elsewhere) {
          topology.staleMap?.();
          bySlot(elsewhere);
        }
      },
      (err: unknown) => {
        // Whatever failed the call (a master that became a replica, or died), a slot map the
        // adapter keeps itself (GLIDE) is read again: it may still name a master that is gone.
        topology.staleMap?.();
        const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
        if (REFUSED.test(errorMessage(cause))) bySlot(decisions);
        else failAll(decisions, err);
      },
    );
  };

  return (decisions) => {
    if (!crossSlotAllowed || runner.currentMode !== 'function') return bySlot(decisions);
    const byMaster = new Map<string, PendingDecision[]>();
    let unrouted: PendingDecision[] | undefined;
    for (const decision of decisions) {
      const master = topology.masterOf(keySlot(keyPrefix + decision.limits[0]!.key));
      if (master === undefined) {
        (unrouted ??= []).push(decision);
        continue;
      }
      const group = byMaster.get(master);
      if (group) group.push(decision);
      else byMaster.set(master, [decision]);
    }
    let masters: ReadonlyMap<string, RedisConnection> | undefined;
    for (const [name, group] of byMaster) {
      if (group.length === 1) {
        (unrouted ??= []).push(group[0]!);
        continue;
      }
      masters ??= topology.masterConnections();
      const master = masters.get(name);
      if (master === undefined || master.status !== 'ready') {
        (unrouted ??= []).push(...group);
        continue;
      }
      for (const call of splitIntoCalls(group, bounds)) crossSlot(master, call);
    }
    if (unrouted) bySlot(unrouted);
  };
}
