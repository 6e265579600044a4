/**
 * ioredis (5, 6): `Redis` and `Cluster` already have the connection's shape (`status`, `call`,
 * `callBuffer`, `ready` / `close` / `end` events), and so do a Cluster's node connections
 * (`cluster.nodes('master')`). A Cluster and its nodes are used as they are (one exception,
 * below); a standalone `Redis` gets a thin connection that coalesces the writes of one tick.
 * A Cluster routes `call('FCALL', [name, numkeys, key, …])` by its first key and follows MOVED, ASK
 * and TRYAGAIN itself; its slot map (`cluster.slots`, per slot the `host:port` of its nodes,
 * master first) tells which master serves a slot.
 *
 * One exception: with `enableAutoPipelining`, ioredis (5 and 6) loses the command name of
 * `callBuffer` (its auto-pipeline re-adds it for `call` only) and throws from a timer. Such a client
 * gets a thin connection whose `callBuffer` goes through the named Buffer command instead
 * (`fcallBuffer`, `evalshaBuffer`, `evalBuffer`), which auto-pipelines correctly.
 *
 * Coalesced writes. Without auto-pipelining, ioredis writes each command to its socket at once:
 * one `write` system call per command on both sides. Lock, lease and idempotency calls are not
 * batched like rate-limit decisions, and many are made in one tick (each reply parsed from one
 * socket read may start the next call). The connection of a standalone client therefore corks
 * its socket at a tick's first call and uncorks it once the tick's synchronous work and
 * microtasks are done (process.nextTick), or as soon as it holds MAX_CORKED_CALLS calls: the
 * tick's commands leave in a few `writev`s, nothing waits a turn. 64 callers doing acquire +
 * release: Node CPU 37 -> 16 µs and Redis CPU 30 -> 12 µs per pair (Redis reads and answers them
 * together too). A batch call of decisions is written at once (`flushWrites`, see coalescedWrites).
 */
import type { ClusterTopology, RedisArgument, RedisConnection, StoreClient } from '../client.js';
import { serverName } from '../client.js';

/** The shape of an ioredis `Redis` or `Cluster` that RedisStore reads: a connection as it is, plus its Cluster parts. */
export interface IoredisLike extends RedisConnection {
  /** `true` on an ioredis `Cluster`. */
  readonly isCluster?: boolean | undefined;
  /** Cluster only: one client per master, for commands that must reach every master (FUNCTION LOAD). */
  nodes?(role: 'master'): RedisConnection[];
  /** Cluster only: per slot the `host:port` of the nodes serving it, its master first. */
  readonly slots?: readonly (readonly string[] | undefined)[];
}

/** Whether `client` has ioredis's shape (structural: ratelock never imports ioredis). */
export function isIoredis(client: object): client is IoredisLike {
  const candidate = client as Partial<IoredisLike>;
  return typeof candidate.call === 'function' && typeof candidate.callBuffer === 'function' && typeof candidate.status === 'string';
}

export function ioredisClient(client: IoredisLike): StoreClient {
  // ioredis prefixes declared keys with its keyPrefix; a Buffer prefix cannot be added to ARGV keys.
  const prefixOption = (client as { options?: { keyPrefix?: unknown } }).options?.keyPrefix;
  const keyPrefix = prefixOption === undefined ? '' : typeof prefixOption === 'string' ? prefixOption : undefined;
  return {
    kind: 'ioredis',
    connection: client.isCluster === true || autoPipelines(client) ? autoPipelineSafe(client) : coalescedWrites(client),
    cluster: client.isCluster === true && client.nodes !== undefined ? ioredisTopology(client as IoredisLike & Required<Pick<IoredisLike, 'nodes'>>) : undefined,
    keyPrefix,
    keepsCommandOrder: true,
    // ioredis marks a client the app closes; a Cluster may then stay 'close' for good.
    closedByApp: () => client.status !== 'ready' && (client as { manuallyClosing?: unknown }).manuallyClosing === true,
  };
}

/** The Buffer-reply command of each script command ratelock sends (see the file header). */
const BUFFER_COMMANDS: Readonly<Record<string, string>> = { FCALL: 'fcallBuffer', EVALSHA: 'evalshaBuffer', EVAL: 'evalBuffer' };

/** Per auto-pipelining client or node, its one connection (masterConnections asks on every flush). */
const pipelineSafe = new WeakMap<RedisConnection, RedisConnection>();

/** The socket of a standalone ioredis client, as far as corking it goes. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Calls a corked socket holds before it is written at once, within the tick: had a tick's calls all
 * waited for its end, Redis would idle while Node runs the tick (settling replies, making the next
 * calls), then Node would idle while Redis answers them all. Written every 16, Redis answers the
 * first ones while Node makes the next. 64 callers doing acquire + release (one key each), Redis
 * 7.0 on one pinned core: 33–35 k pairs/s with Node busy 57–59 % at the tick's end, 53–59 k at 8,
 * 59–61 k at 16 (Node busy 97–98 %), 54–57 k at 32; Node CPU per pair 16–18 µs in every case.
 */
export const MAX_CORKED_CALLS = 16;

/**
 * A standalone client whose commands of one tick leave in writes of up to MAX_CORKED_CALLS (see the
 * file header). `flushWrites` writes them at once: a batch call, with the calls corked before it,
 * leaves early precisely so that Redis starts on it while Node makes the next. Corked until the
 * tick's end, a cascade of replies (each settling decisions whose callers make the next ones in the
 * same tick) sent all its calls together, and Node and Redis took turns: 256 callers, Redis 7.0 on
 * one pinned core, 10 000 keys 111–117 k -> 138–139 k decisions/s, one hot key 232–238 k ->
 * 306–343 k.
 */
function coalescedWrites(client: RedisConnection): RedisConnection {
  let corked: Corkable | undefined;
  let corkedCalls = 0;
  // Also called once a socket holds MAX_CORKED_CALLS: the tick's scheduled uncork then meets the
  // tick's next cork, if any, and writes those calls a little early, which is harmless.
  const uncork = () => {
    const socket = corked;
    corked = undefined;
    socket?.uncork();
  };
  // Only a ready client writes to its socket at once (else ioredis queues the command itself).
  const cork = () => {
    if (corked !== undefined || client.status !== 'ready') return;
    const socket = (client as { stream?: Partial<Corkable> }).stream;
    if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return;
    socket.cork();
    corked = socket as Corkable;
    corkedCalls = 0;
    process.nextTick(uncork);
  };
  // After the call's command is in the socket's buffer.
  const sent = <T>(reply: T): T => {
    if (corked !== undefined && ++corkedCalls >= MAX_CORKED_CALLS) uncork();
    return reply;
  };
  const connection = connectionOver(
    client,
    (command, args) => {
      cork();
      return sent(client.call(command, args));
    },
    (command, args) => {
      cork();
      return sent(client.callBuffer(command, args));
    },
  );
  connection.flushWrites = uncork;
  return connection;
}

/** A connection over `client` with these `call` and `callBuffer`; its status, events and connect are the client's. */
function connectionOver(client: RedisConnection, call: RedisConnection['call'], callBuffer: RedisConnection['callBuffer']): RedisConnection {
  return {
    get status() {
      return client.status;
    },
    name: serverName(client),
    call,
    callBuffer,
    once: (event, listener) => client.once?.(event, listener),
    removeListener: (event, listener) => client.removeListener?.(event, listener),
    ...(client.connect !== undefined ? { connect: () => client.connect!() } : {}),
  };
}

function autoPipelines(client: RedisConnection): boolean {
  return (client as { options?: { enableAutoPipelining?: unknown } }).options?.enableAutoPipelining === true;
}

/** The client itself, or, when it auto-pipelines, a connection whose callBuffer works (see the file header). */
function autoPipelineSafe(client: RedisConnection): RedisConnection {
  if (!autoPipelines(client)) return client;
  let connection = pipelineSafe.get(client);
  if (connection !== undefined) return connection;
  const named = client as unknown as Record<string, ((...args: RedisArgument[]) => Promise<unknown>) | undefined>;
  connection = connectionOver(
    client,
    (command, args) => client.call(command, args),
    (command, args) => {
      const method = named[BUFFER_COMMANDS[command] ?? ''];
      return method !== undefined ? method.apply(client, args) : client.callBuffer(command, args);
    },
  );
  pipelineSafe.set(client, connection);
  return connection;
}

function ioredisTopology(cluster: IoredisLike & Required<Pick<IoredisLike, 'nodes'>>): ClusterTopology {
  return {
    masterOf: (slot) => cluster.slots?.[slot]?.[0],
    masterConnections: () => new Map(cluster.nodes('master').map((node) => [serverName(node), autoPipelineSafe(node)])),
    async masters() {
      const masters = cluster.nodes('master');
      if (masters.length > 0) return masters.map(autoPipelineSafe);
      // A Cluster client still discovering its nodes: a PING waits until it knows them (the
      // caller's timeout budget bounds the wait).
      await cluster.call('PING', []);
      return cluster.nodes('master').map(autoPipelineSafe);
    },
  };
}
