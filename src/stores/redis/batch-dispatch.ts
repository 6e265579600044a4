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
 * earlier one on any of its keys is in flight or waiting (key-ordered-calls.ts). Otherwise two
 * calls in flight could run the other way round, and of two requests for the last unit the later
 * one would get it.
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
import type { CallOrder } from './key-ordered-calls.js';
import type { ScriptRunner } from './script-runner.js';

export type ClusterGrouping = 'node' | 'slot';

type BatchBinding = Binding<readonly BatchDecision[], BatchOutcome[]>;

/** The keys a call names. */
function keysOf(decisions: readonly PendingDecision[]): string[] {
  const keys: string[] = [];
  for (const decision of decisions) for (const limit of decision.limits) keys.push(limit.key);
  return keys;
}

/**
 * Sends one call and settles its decisions; `via` as in ScriptRunner.run; `answered` (standalone)
 * is told first, once the reply or the failure is in.
 */
function send(
  order: CallOrder,
  runner: ScriptRunner,
  binding: BatchBinding,
  decisions: PendingDecision[],
  via?: RedisConnection,
  answered?: () => void,
): void {
  order(() => keysOf(decisions), via, () => runner.run(binding, decisions, via)).then(
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
export function standaloneDispatch(runner: ScriptRunner, order: CallOrder): (decisions: PendingDecision[], answered: () => void) => void {
  return (decisions, answered) => send(order, runner, bindings.batch, decisions, undefined, answered);
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
  order: CallOrder,
): (decisions: PendingDecision[]) => void {
  const topology = client.cluster!;
  // ioredis prefixes declared keys with the client's keyPrefix, so slots are those of prefixed
  // keys, and a cross-slot call (keys in ARGV) must add it itself. A Buffer prefix: by slot only.
  const keyPrefix = client.keyPrefix ?? '';
  const crossSlotAllowed = grouping === 'node' && client.keyPrefix !== undefined;

  const bySlot = (decisions: PendingDecision[]): void => {
    const groups = new Map<number, PendingDecision[]>();
    for (const decision of decisions) {
      const slot = keySlot(keyPrefix + decision.limits[0]!.key);
      const group = groups.get(slot);
      if (group) group.push(decision);
      else groups.set(slot, [decision]);
    }
    for (const group of groups.values()) for (const call of splitIntoCalls(group, bounds)) send(order, runner, bindings.batch, call);
  };

  const crossSlot = (master: RedisConnection, decisions: PendingDecision[]): void => {
    order(() => keysOf(decisions), master, () => runner.run(bindings.batchCrossSlot, { decisions, keyPrefix }, master)).then(
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
