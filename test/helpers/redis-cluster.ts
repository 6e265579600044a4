/**
 * A throwaway Redis Cluster on 127.0.0.1: `masters` (default 3) cluster-enabled redis-server
 * processes, plus `replicas` per master (default 0; 1 gives the 3 + 3 layout of the failover
 * tests), joined with `redis-cli --cluster create` and returned only once every node reports
 * `cluster_state:ok`, knows every other node and sees all 16384 slots assigned (and every replica
 * has its master link up). `cluster-node-timeout` is 1000 ms so failovers take about a second.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';
import { parseInfo, sendCommand } from './resp.js';

export interface StartRedisClusterOptions {
  /** Number of masters; Redis Cluster needs at least 3. Default 3. */
  masters?: number;
  /** Replicas per master. Default 0. */
  replicas?: number;
  /** Extra redis-server arguments for every node. */
  args?: readonly string[];
}

export interface RedisClusterHandle {
  /** Every node: the masters first, then the replicas (roles as created; a failover changes them). */
  readonly nodes: readonly RedisServerHandle[];
  /** The nodes that were masters when the cluster was created. */
  readonly masters: readonly RedisServerHandle[];
  /** The replicas as created (empty with `replicas: 0`). */
  readonly replicas: readonly RedisServerHandle[];
  /** Stops every node (in parallel). Safe to call twice. */
  stop(): Promise<void>;
}

const NODE_TIMEOUT_MS = 1_000;
const CREATE_TIMEOUT_MS = 30_000;
/** redis-cli waits ≥ 1 s for the join; nodes then agree within a few node timeouts. */
const CONVERGE_TIMEOUT_MS = 20_000;
const PROBE_TIMEOUT_MS = 500;
const PROBE_INTERVAL_MS = 50;
const TOTAL_SLOTS = 16_384;

const run = promisify(execFile);

/** Starts and joins a cluster; on any failure stops the nodes it started before rethrowing. */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masterCount = options.masters ?? 3;
  const replicaCount = options.replicas ?? 0;
  if (!Number.isInteger(masterCount) || masterCount < 3) throw new RangeError(`masters must be an integer ≥ 3; got ${masterCount}`);
  if (!Number.isInteger(replicaCount) || replicaCount < 0) throw new RangeError(`replicas must be an integer ≥ 0; got ${replicaCount}`);

  const nodeArgs = [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf', // relative to the node's own --dir
    '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
    // Replicas sync at once instead of after the default 5 s wait for more replicas to batch.
    '--repl-diskless-sync-delay', '0',
    ...(options.args ?? []),
  ];
  const total = masterCount * (1 + replicaCount);
  const started = await Promise.allSettled(
    Array.from({ length: total }, () => startRedisServer({ args: nodeArgs, clusterBus: true })),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  let roles: ('master' | 'replica')[];
  try {
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    await createCluster(nodes, replicaCount);
    roles = await waitUntilConverged(nodes);
  } catch (err) {
    await stop();
    throw err;
  }
  const masters = nodes.filter((_, index) => roles[index] === 'master');
  const replicas = nodes.filter((_, index) => roles[index] === 'replica');
  return { nodes: [...masters, ...replicas], masters, replicas, stop };
}

async function createCluster(nodes: readonly RedisServerHandle[], replicasPerMaster: number): Promise<void> {
  const args = [
    '--cluster', 'create',
    ...nodes.map((node) => `127.0.0.1:${node.port}`),
    '--cluster-replicas', String(replicasPerMaster),
    '--cluster-yes',
  ];
  try {
    await run('redis-cli', args, { timeout: CREATE_TIMEOUT_MS, killSignal: 'SIGKILL' });
  } catch (err) {
    const { code, stdout, stderr } = err as { code?: unknown; stdout?: string; stderr?: string };
    const hint = code === 'ENOENT' ? ' (redis-cli not found on PATH; it ships with redis-server / redis-tools)' : '';
    throw new Error(`redis-cli ${args.join(' ')} failed${hint}:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
}

/** Polls every node until the cluster is whole; returns each node's role. */
async function waitUntilConverged(nodes: readonly RedisServerHandle[]): Promise<('master' | 'replica')[]> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  for (;;) {
    const views = await Promise.all(nodes.map((node) => describeNode(node, nodes.length)));
    const pending = views.filter((view) => !view.ready);
    if (pending.length === 0) return views.map((view) => view.role);
    if (Date.now() > deadline) {
      throw new Error(`Redis Cluster did not converge within ${CONVERGE_TIMEOUT_MS} ms: ${pending.map((view) => view.summary).join('; ')}`);
    }
    await sleep(PROBE_INTERVAL_MS);
  }
}

interface NodeView {
  /** cluster_state ok, knows every node, all slots assigned, and (replica) its master link is up. */
  ready: boolean;
  role: 'master' | 'replica';
  summary: string;
}

async function describeNode(node: RedisServerHandle, nodeCount: number): Promise<NodeView> {
  const address = `127.0.0.1:${node.port}`;
  try {
    const cluster = parseInfo(await sendCommand(node.port, ['CLUSTER', 'INFO'], PROBE_TIMEOUT_MS));
    const replication = parseInfo(await sendCommand(node.port, ['INFO', 'replication'], PROBE_TIMEOUT_MS));
    const state = cluster.get('cluster_state');
    const known = Number(cluster.get('cluster_known_nodes'));
    const assigned = Number(cluster.get('cluster_slots_assigned'));
    const role = replication.get('role') === 'slave' ? 'replica' : 'master';
    const link = role === 'replica' ? replication.get('master_link_status') : 'n/a';
    const ready = state === 'ok' && known === nodeCount && assigned === TOTAL_SLOTS && (role === 'master' || link === 'up');
    return { ready, role, summary: `${address} state=${state} known=${known}/${nodeCount} slots=${assigned} role=${role} link=${link}` };
  } catch (err) {
    return { ready: false, role: 'master', summary: `${address} ${(err as Error).message}` };
  }
}
