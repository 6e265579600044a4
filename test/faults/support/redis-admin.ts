/**
 * Side-channel access to a fault test's own redis-server, apart from the client under test: INFO
 * figures through the harness's one-shot RESP client (never affected by CLIENT KILL or reconnects),
 * and an ioredis admin client for scans once the fault is over.
 */
import { Redis } from 'ioredis';
import { parseInfo, sendCommand } from '../../helpers/resp.js';

const ADMIN_TIMEOUT_MS = 5_000;

/** One INFO section of 127.0.0.1:`port` as a field map. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  return parseInfo(await sendCommand(port, ['INFO', section], ADMIN_TIMEOUT_MS));
}

/** `calls` of one command in INFO commandstats (0 if never called). */
export async function commandCalls(port: number, command: string): Promise<number> {
  const stats = await info(port, 'commandstats');
  const line = stats.get(`cmdstat_${command.toLowerCase()}`) ?? '';
  return Number(/(?:^|,)calls=(\d+)/.exec(line)?.[1] ?? 0);
}

/** `calls` + `rejected_calls` + `failed_calls` of one command: every time a client sent it. */
export async function commandAttempts(port: number, command: string): Promise<number> {
  const stats = await info(port, 'commandstats');
  const line = stats.get(`cmdstat_${command.toLowerCase()}`) ?? '';
  const field = (name: string) => Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(line)?.[1] ?? 0);
  return field('calls') + field('rejected_calls') + field('failed_calls');
}

/** used_memory in bytes. */
export async function usedMemory(port: number): Promise<number> {
  return Number((await info(port, 'memory')).get('used_memory'));
}

/** db0's `keys` and `expires` from INFO keyspace (0 when the DB is empty). */
export async function keyspace(port: number, db = 0): Promise<{ keys: number; expires: number }> {
  const line = (await info(port, 'keyspace')).get(`db${db}`) ?? '';
  return { keys: Number(/keys=(\d+)/.exec(line)?.[1] ?? 0), expires: Number(/expires=(\d+)/.exec(line)?.[1] ?? 0) };
}

/** A plain admin client (fails fast, never used by the code under test). Disconnect it when done. */
export function adminClient(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: false });
  client.on('error', () => undefined); // the server under test may be down on purpose
  return client;
}

/** Every key matching `pattern`, by SCAN (never KEYS on a server that matters). */
export async function scanKeys(client: Redis, pattern = '*', count = 1_000): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/**
 * Commands an ioredis client holds: sent and awaiting their reply (`commandQueue`) and waiting to be
 * sent (`offlineQueue`). ioredis internals, read only to measure whether a queue grows.
 */
export function clientQueues(client: Redis): { awaitingReply: number; offline: number } {
  const internals = client as unknown as { commandQueue?: { length: number }; offlineQueue?: { length: number } };
  return { awaitingReply: internals.commandQueue?.length ?? 0, offline: internals.offlineQueue?.length ?? 0 };
}
