/**
 * How RedisStore tells the Redis clients apart (src/stores/redis/clients/index.ts): by shape, on
 * the real client objects of each library (none needs a server to be recognised), never by
 * importing the libraries; the constants the adapters hold for GLIDE and node-redis match those
 * libraries' own; GLIDE's rewritten error texts come back as Redis's; an auto-pipelining ioredis
 * client gets binary replies through its named Buffer commands; and the real clients' types
 * are accepted by `RedisStoreOptions.client` (checked by tsc: this file is type-checked).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decoder, GlideClient, GlideClusterClient } from '@valkey/valkey-glide';
import { Cluster, Redis } from 'ioredis';
import { RESP_TYPES, createClient, createCluster } from 'redis';
import { createClient as createClient5, createCluster as createCluster5 } from 'redis5';
import { describe, expect, it } from 'vitest';
import { ConfigError, StoreError } from '../../src/core/errors.js';
import { lockKeys } from '../../src/core/store-keys.js';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis.js';
import { detectClient } from '../../src/stores/redis/clients/index.js';
import { normaliseGlideError } from '../../src/stores/redis/clients/glide.js';
import { nodeRedisCluster } from '../../src/stores/redis/clients/node-redis.js';
import { keySlot } from '../../src/stores/redis/hash-tag.js';
import { MAX_CORKED_CALLS } from '../../src/stores/redis/clients/ioredis.js';
import { MAX_BATCH_DECISIONS } from '../../src/stores/redis/decision-batcher.js';
import { isErrorReply } from '../../src/stores/redis/client.js';
import { newRedisClient } from '../helpers/redis.js';

/** A GLIDE client object without a connection (its prototype is what detection reads). */
function glideShaped<T extends object>(ctor: { prototype: T }): T {
  return Object.create(ctor.prototype) as T;
}

describe('client detection', () => {
  it('recognises each library by its shape, standalone and Cluster', () => {
    const ioredis = new Redis({ lazyConnect: true });
    const ioredisCluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    const nodeRedis = createClient();
    const nodeRedisCluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:1' }] });
    const nodeRedis5 = createClient5();
    const nodeRedis5Cluster = createCluster5({ rootNodes: [{ url: 'redis://127.0.0.1:1' }] });
    try {
      const seen = [ioredis, ioredisCluster, nodeRedis, nodeRedisCluster, nodeRedis5, nodeRedis5Cluster, glideShaped(GlideClient), glideShaped(GlideClusterClient)].map((client) => {
        const view = detectClient(client)!;
        return [view.kind, view.cluster !== undefined];
      });
      expect(seen).toEqual([
        ['ioredis', false],
        ['ioredis', true],
        ['node-redis', false],
        ['node-redis', true],
        ['node-redis', false],
        ['node-redis', true],
        ['glide', false],
        ['glide', true],
      ]);
    } finally {
      ioredis.disconnect();
      ioredisCluster.disconnect();
    }
  });

  it('uses an ioredis Cluster as it is (no wrapper on the hot path)', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    try {
      expect(detectClient(cluster)!.connection).toBe(cluster);
    } finally {
      cluster.disconnect();
    }
  });

  it("sends a standalone ioredis client's few small commands of one tick in one write (socket corked until the tick ends)", async () => {
    const client = newRedisClient();
    try {
      await client.ping();
      const { connection } = detectClient(client)!;
      const socket = (client as unknown as { stream: { writableCorked: number } }).stream;
      const replies = Array.from({ length: 10 }, (_, i) => connection.call('ECHO', [`m${i}`]));
      expect(socket.writableCorked).toBe(1);
      await new Promise((resolve) => process.nextTick(resolve));
      expect(socket.writableCorked).toBe(0);
      expect(await Promise.all(replies)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
      // Not connected: ioredis queues the command itself; nothing is corked.
      const lazy = new Redis({ lazyConnect: true });
      expect(detectClient(lazy)!.connection.status).toBe('wait');
      lazy.disconnect();
    } finally {
      client.disconnect();
    }
  });

  it(`writes a standalone ioredis client's socket within the tick once it holds ${MAX_CORKED_CALLS} calls, so Redis starts on them`, async () => {
    const client = newRedisClient();
    try {
      await client.ping();
      const { connection } = detectClient(client)!;
      const socket = (client as unknown as { stream: { writableCorked: number } }).stream;
      const echo = (i: number) => connection.call('ECHO', [`m${i}`]);
      const replies = Array.from({ length: MAX_CORKED_CALLS - 1 }, (_, i) => echo(i));
      expect(socket.writableCorked).toBe(1);
      replies.push(echo(MAX_CORKED_CALLS - 1));
      expect(socket.writableCorked).toBe(0); // written now, not at the tick's end
      replies.push(echo(MAX_CORKED_CALLS));
      expect(socket.writableCorked).toBe(1); // the next calls are corked again
      await new Promise((resolve) => process.nextTick(resolve));
      expect(socket.writableCorked).toBe(0);
      expect(await Promise.all(replies)).toEqual(Array.from({ length: MAX_CORKED_CALLS + 1 }, (_, i) => `m${i}`));
    } finally {
      client.disconnect();
    }
  });

  it('writes a batch call at once, with the calls corked before it, however few arguments it has (a hot key\'s run)', async () => {
    const client = newRedisClient();
    try {
      const store = new RedisStore({ client });
      await store.ready();
      const socket = (client as unknown as { stream: { writableCorked: number } }).stream;
      const id = `corked-${process.pid}-${Date.now()}`;
      const before = store.acquireLock(lockKeys('lk:', `${id}-a`), 'token', 1_000);
      expect(socket.writableCorked).toBe(1);
      // One key: the call is a run of MAX_BATCH_DECISIONS consumes, a dozen arguments.
      const limits = [{ key: `rl:{${id}}:1s`, windowMs: 1_000, limit: 1_000 }];
      const consumes = Array.from({ length: MAX_BATCH_DECISIONS }, () => store.consume(limits, 1));
      expect(socket.writableCorked).toBe(0); // the full call left with the lock call before it
      const after = store.acquireLock(lockKeys('lk:', `${id}-b`), 'token', 1_000);
      expect(socket.writableCorked).toBe(1);
      const results = await Promise.all(consumes);
      expect(results.map((result) => result.remaining)).toEqual(Array.from({ length: MAX_BATCH_DECISIONS }, (_, i) => 999 - i));
      expect(await before).toMatchObject({ acquired: true });
      expect(await after).toMatchObject({ acquired: true });
    } finally {
      client.disconnect();
    }
  });

  it.each([
    ['undefined', undefined],
    ['a URL string', 'redis://localhost'],
    ['a plain object', { get: () => undefined }],
    ['a node-redis multi', { exec: () => undefined, sendCommand: () => undefined }],
  ])('refuses %s with a ConfigError naming every accepted client', (_label, client) => {
    expect(() => new RedisStore({ client } as unknown as RedisStoreOptions)).toThrow(ConfigError);
    expect(() => new RedisStore({ client } as unknown as RedisStoreOptions)).toThrow(/ioredis Redis or Cluster, a node-redis client or cluster, or a Valkey GLIDE client/);
  });

  it('never imports a client library: RedisStore reads shapes only, so an app loads only the client it uses', () => {
    const dir = join(import.meta.dirname, '../../src/stores/redis');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    const imports = files.flatMap((file) =>
      [...readFileSync(join(dir, file), 'utf8').matchAll(/^\s*(?:import|export)[^;]*?from\s+'([^']+)'/gm)].map((match) => match[1]!),
    );
    expect(imports.filter((source) => !source.startsWith('.') && !source.startsWith('node:'))).toEqual([]);
  });
});

// A Cluster review saw a lock acquire refused this way followed by give-back releases retried for
// a token never granted: the error did not say it was never sent (StoreError.notSent).
describe('node-redis Cluster, a slot whose master is not ready', () => {
  it('fails the call at once, unsent, and says so (notSent)', async () => {
    const key = 'lk:{order-1}';
    const master = { address: '127.0.0.1:7000', client: { isReady: false } };
    const slots: ({ master: typeof master } | undefined)[] = [];
    slots[keySlot(key)] = { master };
    let sent = 0;
    const cluster = {
      isOpen: true,
      slots,
      masters: [master],
      sendCommand: async () => void sent++,
      nodeClient: async () => master.client,
      on: () => cluster,
      once: () => cluster,
      removeListener: () => cluster,
    };
    const client = nodeRedisCluster(cluster as never);
    const failed = client.connection.call('FCALL', ['ratelock_lock_acquire', 2, key, `${key}:fence`]);
    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toMatchObject({ notSent: true, message: expect.stringContaining('not ready; the call was not sent') });
    expect(sent).toBe(0);
  });
});

describe('what the adapters hold of the libraries', () => {
  it("GLIDE's Decoder values and node-redis's BLOB_STRING type are the ones the adapters send", () => {
    const glide = readFileSync(join(import.meta.dirname, '../../src/stores/redis/clients/glide.ts'), 'utf8');
    expect(glide).toContain(`const DECODER_BYTES = ${Decoder.Bytes};`);
    expect(glide).toContain(`const DECODER_STRING = ${Decoder.String};`);
    const nodeRedis = readFileSync(join(import.meta.dirname, '../../src/stores/redis/clients/node-redis.ts'), 'utf8');
    expect(nodeRedis).toContain(`const BLOB_STRING = ${RESP_TYPES.BLOB_STRING};`);
  });

  it.each([
    ['An error was signalled by the server: - ResponseError: Function not found', 'ERR Function not found'],
    ['An error was signalled by the server: - NoScriptError: No matching script. Please use EVAL.', 'NOSCRIPT No matching script. Please use EVAL.'],
    ['An error was signalled by the server: - ReadOnly: You can\'t write against a read only replica.', "READONLY You can't write against a read only replica."],
    ['An error was signalled by the server: - Moved: 3999 127.0.0.1:6381', 'MOVED 3999 127.0.0.1:6381'],
    ['An error was signalled by the server: - TryAgain: Multiple keys request during rehashing of slot', 'TRYAGAIN Multiple keys request during rehashing of slot'],
    ['An error was signalled by the server: - BusyLoadingError: Redis is loading the dataset in memory', 'LOADING Redis is loading the dataset in memory'],
    ["An error was signalled by the server: - PermissionDenied: this user has no permissions to run the 'function|load' command", "NOPERM this user has no permissions to run the 'function|load' command"],
    ['WRONGTYPE: Operation against a key holding the wrong kind of value', 'WRONGTYPE Operation against a key holding the wrong kind of value'],
    ["OOM: command not allowed when used memory > 'maxmemory'.", "OOM command not allowed when used memory > 'maxmemory'."],
    ['timed out', 'timed out'],
  ])('GLIDE error %j is read as %j', (glide, redis) => {
    const normalised = normaliseGlideError(new Error(glide));
    expect(normalised.message).toBe(redis);
    // Server replies count as replies for the in-flight gate; GLIDE's own timeout does not.
    expect(isErrorReply(normalised)).toBe(redis !== 'timed out');
  });
});

// Type-level: the real clients fit `RedisStoreOptions.client` as they are (tsc checks this file;
// nothing here runs).
export function acceptedByType(clients: {
  ioredis: Redis;
  ioredisCluster: Cluster;
  nodeRedis: ReturnType<typeof createClient>;
  nodeRedisResp3: ReturnType<typeof createClient<{}, {}, {}, 3>>;
  nodeRedisCluster: ReturnType<typeof createCluster>;
  nodeRedis5: ReturnType<typeof createClient5>;
  nodeRedis5Cluster: ReturnType<typeof createCluster5>;
  glide: GlideClient;
  glideCluster: GlideClusterClient;
}): RedisStoreOptions['client'][] {
  return [
    clients.ioredis,
    clients.ioredisCluster,
    clients.nodeRedis,
    clients.nodeRedisResp3,
    clients.nodeRedisCluster,
    clients.nodeRedis5,
    clients.nodeRedis5Cluster,
    clients.glide,
    clients.glideCluster,
  ];
}

describe('ioredis with enableAutoPipelining (its callBuffer loses the command name)', () => {
  it('sends binary-reply calls through the named Buffer command, and hands out one connection per client or node', async () => {
    const sent: string[] = [];
    const shaped = (name: string, enableAutoPipelining: boolean) => ({
      status: 'ready',
      options: { host: name, port: 6379, enableAutoPipelining },
      call: async (command: string) => void sent.push(`${name} call ${command}`),
      callBuffer: async (command: string) => void sent.push(`${name} callBuffer ${command}`),
      fcallBuffer: async (...args: unknown[]) => void sent.push(`${name} fcallBuffer ${String(args[0])}`),
      evalshaBuffer: async (...args: unknown[]) => void sent.push(`${name} evalshaBuffer ${String(args[0])}`),
    });
    const nodes = [shaped('a', true), shaped('b', false)];
    const cluster = { ...shaped('cluster', true), isCluster: true, nodes: () => nodes, slots: [] };
    const client = detectClient(cluster)!;
    await client.connection.callBuffer('FCALL', ['fn', 0]);
    await client.connection.callBuffer('EVALSHA', ['sha', 0]);
    await client.connection.callBuffer('HGETALL', ['key']); // no named command: as it is
    const [first, second] = [client.cluster!.masterConnections(), client.cluster!.masterConnections()];
    expect(first.get('a:6379')).toBe(second.get('a:6379')); // built once, not per flush
    expect(first.get('b:6379')).toBe(nodes[1]); // not auto-pipelining: the node itself
    await first.get('a:6379')!.callBuffer('FCALL', ['fn', 0]);
    expect(sent).toEqual(['cluster fcallBuffer fn', 'cluster evalshaBuffer sha', 'cluster callBuffer HGETALL', 'a fcallBuffer fn']);
  });
});
