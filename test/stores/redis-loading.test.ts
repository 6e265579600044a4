/**
 * How RedisStore gets its scripts onto a server and keeps them there: lazy FUNCTION LOAD, a single
 * reload per lost library (however many calls fail at once), the EVALSHA/EVAL fallback, SHA1s
 * computed here matching SCRIPT LOAD, and fast failure when Redis is away. Each test group starts
 * its own server: FUNCTION FLUSH, SCRIPT FLUSH, MONITOR and CONFIG SET are server-wide.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { bindings, library } from '../../src/stores/redis/bindings.js';
import { redisStoreForTests, scriptStats } from '../../src/stores/testing.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const clients: Redis[] = [];

function connect(server: RedisServerHandle, options: { lazyConnect?: boolean; enableAutoPipelining?: boolean } = {}): Redis {
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100, ...options });
  client.on('error', () => {}); // reconnect noise while a server is stopped on purpose
  clients.push(client);
  return client;
}

afterEach(() => {
  while (clients.length > 0) clients.pop()!.disconnect();
});

function perMinute(max = 1000): StoreLimit {
  return { key: limitKey('rl:', uniqueId('load'), '1m'), windowMs: 60_000, limit: max };
}

/** Calls of one command on the server (INFO commandstats), e.g. `function|load`, `evalsha`. */
async function commandCalls(client: Redis, command: string): Promise<number> {
  const info = await client.info('commandstats');
  const match = new RegExp(`^cmdstat_${command.replace('|', '\\|')}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

function totalLoads(store: RedisStore): number {
  return [...scriptStats(store).libraryLoads.values()].reduce((sum, loads) => sum + loads, 0);
}

describe('Function library', () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('is loaded lazily by the first call and registers every operation', async () => {
    const admin = connect(server);
    await admin.function('FLUSH');
    const store = new RedisStore({ client: admin });
    expect(await admin.call('FUNCTION', 'LIST')).toEqual([]); // the constructor sends nothing
    expect(await store.consume([perMinute()], 1)).toMatchObject({ allowed: true });
    const [listed] = (await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', library.name)) as unknown[][];
    const functions = (listed![5] as string[][]).map((fn) => fn[1]).sort();
    expect(functions).toEqual(Object.values(bindings).map((binding) => binding.script.functionName).sort());
    expect(scriptStats(store)).toMatchObject({ mode: 'function' });
    expect(totalLoads(store)).toBe(1);
  });

  it.each([false, true])('reloads once per FUNCTION FLUSH, however many concurrent calls hit the missing library (auto-pipelining: %s)', async (enableAutoPipelining) => {
    const client = connect(server, { enableAutoPipelining });
    const admin = connect(server);
    const store = new RedisStore({ client });
    const limit = perMinute(100_000);
    await store.ready();
    const loadsBefore = await commandCalls(admin, 'function|load');
    for (let flush = 1; flush <= 3; flush++) {
      await admin.function('FLUSH');
      const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.consume([limit], 1)));
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
      expect(totalLoads(store)).toBe(1 + flush);
    }
    expect(await commandCalls(admin, 'function|load')).toBe(loadsBefore + 3);
    expect(await admin.llen(limit.key)).toBe(150);
  });

  it('rethrows other errors as StoreError without reloading', async () => {
    const client = connect(server);
    const store = new RedisStore({ client });
    await store.ready();
    const limit = perMinute();
    await client.set(limit.key, 'not a list');
    const failure = store.consume([limit], 1);
    await expect(failure).rejects.toBeInstanceOf(StoreError);
    await expect(failure).rejects.toThrow(/Redis script consume failed: .*WRONGTYPE/);
    expect(totalLoads(store)).toBe(1);
  });

  it.each([
    ['two integers for a consume', '{1, 2}', /malformed reply from Redis script batch \(expected 7 integers\)/],
    ['an index out of range', '{1, 5, 0, 0, 0, 0, 0}', /malformed reply from Redis script batch \(expected allowed 0\|1 and index in \[0, 0\]\)/],
    ['a value too many', '{1, 0, 0, 0, 0, 0, 0, 7}', /malformed reply from Redis script batch \(expected 7 values for 1 decisions\)/],
    ['no array', "'OK'", /malformed reply from Redis script batch \(expected an array\)/],
  ])('turns a malformed reply (%s) into a StoreError naming the script', async (_label, reply, message) => {
    const client = connect(server);
    const store = new RedisStore({ client });
    await store.ready();
    const impostor = `#!lua name=${library.name}\nredis.register_function('${bindings.batch.script.functionName}', function() return ${reply} end)`;
    await client.function('LOAD', 'REPLACE', impostor);
    const failure = store.consume([perMinute()], 1);
    await expect(failure).rejects.toBeInstanceOf(StoreError);
    await expect(failure).rejects.toThrow(message);
    await client.function('FLUSH');
  });

  it('is refused before writing anything when Redis is out of memory (no allow-oom flag)', async () => {
    const client = connect(server);
    const store = new RedisStore({ client });
    await store.ready();
    const limit = perMinute();
    await client.config('SET', 'maxmemory', '1');
    try {
      await expect(store.consume([limit], 1)).rejects.toThrow(/OOM/);
    } finally {
      await client.config('SET', 'maxmemory', '0');
    }
    expect(await client.exists(limit.key)).toBe(0);
  });
});

describe('EVALSHA fallback', () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it('computes the SHA1 that SCRIPT LOAD answers, for every script', async () => {
    const admin = connect(server);
    for (const { script } of Object.values(bindings)) {
      expect(await admin.script('LOAD', script.evalSource)).toBe(script.sha1);
    }
  });

  it('sends EVALSHA, falls back to EVAL on NOSCRIPT after SCRIPT FLUSH, then EVALSHA again', async () => {
    const client = connect(server);
    const store = redisStoreForTests(client, { mode: 'eval' });
    await store.ready();
    const limit = perMinute();
    await store.consume([limit], 1);
    const monitor = await connect(server).monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (/^eval/i.test(args[0] ?? '')) seen.push(`${args[0]!.toUpperCase()} ${args[1] === bindings.batch.script.sha1 ? 'sha' : 'source'}`);
    });
    await client.script('FLUSH');
    await store.consume([limit], 1);
    await store.consume([limit], 1);
    await client.ping(); // MONITOR has relayed everything before this reply
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.disconnect();
    expect(seen).toEqual(['EVALSHA sha', 'EVAL source', 'EVALSHA sha']);
    expect(await client.llen(limit.key)).toBe(3);
    expect(scriptStats(store).mode).toBe('eval');
  });

  it.each([false, true])('reloads every concurrent call after SCRIPT FLUSH (auto-pipelining: %s)', async (enableAutoPipelining) => {
    const client = connect(server, { enableAutoPipelining });
    const store = redisStoreForTests(client, { mode: 'eval' });
    await store.ready();
    const limit = perMinute(100_000);
    for (let flush = 0; flush < 3; flush++) {
      await client.script('FLUSH');
      const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.consume([limit], 1)));
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    }
    expect(await client.llen(limit.key)).toBe(150);
  });

  it('is chosen by itself on a server without the FUNCTION command', async () => {
    const functionless = await startRedisServer({ args: ['--rename-command', 'FUNCTION', '""'] });
    try {
      const client = connect(functionless);
      const store = new RedisStore({ client });
      await store.ready(); // connects; FUNCTION LOAD fails as an unknown command
      const limit = perMinute(2);
      expect(await store.consume([limit], 1)).toMatchObject({ allowed: true, remaining: 1 });
      expect(await store.consume([limit], 2)).toMatchObject({ allowed: false, remaining: 1 });
      expect(scriptStats(store).mode).toBe('eval');
      expect(await client.script('EXISTS', bindings.batch.script.sha1)).toEqual([1]);
    } finally {
      await functionless.stop();
    }
  });
});

describe('Redis unavailable', () => {
  it('fails fast with a StoreError when the client is not ready, instead of queueing', async () => {
    const server = await startRedisServer();
    try {
      const client = connect(server);
      const store = new RedisStore({ client });
      await store.ready();
      await server.stop();
      await new Promise<void>((resolve) => (client.status === 'ready' ? client.once('close', resolve) : resolve()));
      const started = performance.now();
      const failure = store.consume([perMinute()], 1);
      await expect(failure).rejects.toBeInstanceOf(StoreError);
      await expect(failure).rejects.toThrow(/Redis client not ready \(status: (connecting|reconnecting|close|end)\)/);
      expect(performance.now() - started).toBeLessThan(50);
    } finally {
      await server.stop();
    }
  });

  it('sends a call made during the first connection once connected (an app serving right after start-up)', async () => {
    const server = await startRedisServer();
    const client = connect(server, { lazyConnect: true });
    try {
      expect(client.status).toBe('wait');
      const store = new RedisStore({ client }); // starts connecting and loading in the background
      await expect(store.acquireLock({ lock: 'l', fence: 'f' }, 't', 1000)).resolves.toMatchObject({ acquired: true });
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('fails fast once a client that was ready is reconnecting, even mid-reconnect ("connecting")', async () => {
    const server = await startRedisServer();
    const client = connect(server);
    try {
      const store = new RedisStore({ client });
      await store.ready();
      await server.stop();
      for (const status of ['reconnecting', 'connecting', 'connect']) {
        Object.defineProperty(client, 'status', { value: status, configurable: true, writable: true });
        await expect(store.consume([perMinute()], 1)).rejects.toThrow(`not ready (status: ${status})`);
      }
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
});
