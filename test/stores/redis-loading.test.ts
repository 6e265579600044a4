/**
 * How RedisStore gets its scripts onto a server and keeps them there: lazy FUNCTION LOAD, a single
 * reload per lost library (however many calls fail at once), the EVALSHA/EVAL fallback, SHA1s
 * computed here matching SCRIPT LOAD, a replica refusing the load, and fast failure when Redis is
 * away — on every client RedisStore accepts (test/helpers/clients.ts). Each client gets servers of
 * its own: FUNCTION FLUSH, SCRIPT FLUSH, MONITOR and CONFIG SET are server-wide. What the test reads
 * or changes on the server goes through an ioredis admin connection, never the client under test.
 */
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/core/errors.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { limitKey } from '../helpers/keys.js';
import type { StoreLimit } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis.js';
import { bindings, library } from '../../src/stores/redis/bindings.js';
import { LOAD_REFUSAL_MS } from '../../src/stores/redis/script-runner.js';
import { redisStoreForTests, scriptStats } from '../../src/stores/testing.js';
import { type ClientKind, type ConnectOptions, type TestClient, clientKinds, connectClient } from '../helpers/clients.js';
import { watchEventLoop } from '../helpers/event-loop.js';
import { commandCalls, startRedisServer, type RedisServerHandle } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const open: (TestClient | Redis)[] = [];

/** An ioredis admin connection (reads and changes the server apart from the client under test). */
function adminOf(server: RedisServerHandle): Redis {
  const admin = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  admin.on('error', () => {}); // reconnect noise while a server is stopped on purpose
  open.push(admin);
  return admin;
}

afterEach(async () => {
  for (const client of open.splice(0)) {
    if (client instanceof Redis) client.disconnect();
    else await client.close();
  }
});

function perMinute(max = 1000): StoreLimit {
  return { key: limitKey('rl:', uniqueId('load'), '1m'), windowMs: 60_000, limit: max };
}

/** Every attempt of one command, refused ones included (`rejected_calls`, `failed_calls`). */
async function commandAttempts(admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats');
  const line = new RegExp(`^cmdstat_${command.replace('|', '\\|')}:(.*)$`, 'm').exec(info)?.[1] ?? '';
  const field = (name: string) => Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(line)?.[1] ?? 0);
  return field('calls') + field('rejected_calls') + field('failed_calls');
}

function totalLoads(store: RedisStore): number {
  return [...scriptStats(store).libraryLoads.values()].reduce((sum, loads) => sum + loads, 0);
}

describe.each(clientKinds)('%s client', (kind: ClientKind) => {
  async function connect(server: RedisServerHandle, options: ConnectOptions = {}): Promise<TestClient> {
    const client = await connectClient(kind, { url: server.url }, options);
    open.push(client);
    return client;
  }

  describe('Function library', () => {
    let server: RedisServerHandle;
    let admin: Redis;
    beforeAll(async () => {
      server = await startRedisServer();
      admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    });
    afterAll(async () => {
      admin.disconnect();
      await server.stop();
    });

    it('is loaded by the first call (or by the store in the background) and registers every operation', async () => {
      await admin.function('FLUSH');
      const { client } = await connect(server);
      const store = new RedisStore({ client });
      expect(await store.consume([perMinute()], 1)).toMatchObject({ allowed: true });
      const [listed] = (await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', library.name)) as unknown[][];
      const functions = (listed![5] as string[][]).map((fn) => fn[1]).sort();
      expect(functions).toEqual(Object.values(bindings).map((binding) => binding.script.functionName).sort());
      expect(scriptStats(store)).toMatchObject({ mode: 'function' });
      expect(totalLoads(store)).toBe(1);
    });

    // ioredis runs it twice: without and with auto-pipelining (commands of a tick sent as one pipeline).
    const pipelining = kind === 'ioredis' ? [false, true] : [false];
    it.each(pipelining)('reloads once per FUNCTION FLUSH, however many concurrent calls hit the missing library (ioredis auto-pipelining: %s)', async (enableAutoPipelining) => {
      const client = enableAutoPipelining ? new Redis(server.url, { maxRetriesPerRequest: 1, enableAutoPipelining }) : (await connect(server)).client;
      if (client instanceof Redis) open.push(client);
      const store = new RedisStore({ client });
      const limit = perMinute(100_000);
      await store.ready();
      const loadsBefore = await commandCalls(admin, 'function|load');
      for (let flush = 1; flush <= 3; flush++) {
        await admin.function('FLUSH');
        // Decisions of one turn (one batch call) and lock calls of their own, all meeting the loss.
        const results = await Promise.allSettled([
          ...Array.from({ length: 50 }, () => store.consume([limit], 1)),
          ...Array.from({ length: 5 }, () => store.acquireLock({ lock: `lk:{${uniqueId('l')}}`, fence: `lk:{x}:fence` }, 't', 1_000)),
        ]);
        expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
        expect(totalLoads(store)).toBe(1 + flush);
      }
      expect(await commandCalls(admin, 'function|load')).toBe(loadsBefore + 3);
      expect(await admin.llen(limit.key)).toBe(150);
    });

    // A4 of the fault tier (FUNCTION FLUSH every 5 ms) once failed a call whose resend after the
    // reload met the next flush. Here the library stays "there" by name but without the function
    // (a same-named library registering another one), so the reload finds it and skips, and the
    // resend meets the loss again, every time: the call must then carry its own code.
    it('sends a call as EVAL of its own code when the function is still missing after the reload', async () => {
      const { client } = await connect(server);
      const store = new RedisStore({ client });
      await store.ready();
      const impostor = `#!lua name=${library.name}\nredis.register_function('${library.name}_not_ours', function() return 1 end)`;
      await admin.function('LOAD', 'REPLACE', impostor);
      try {
        const evalsBefore = await commandCalls(admin, 'eval');
        const loadsBefore = totalLoads(store);
        const limit = perMinute(2);
        const decisions = await Promise.all([store.consume([limit], 1), store.consume([limit], 1), store.consume([limit], 1)]);
        expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
        const keys = { lock: `lk:{${uniqueId('l')}}`, fence: 'lk:{x}:fence' };
        expect(await store.acquireLock(keys, 't', 1_000)).toMatchObject({ acquired: true });
        expect(await store.releaseLock(keys, 't')).toBe(true);
        expect(await admin.llen(limit.key)).toBe(2);
        expect(await admin.exists(keys.lock)).toBe(0);
        // One EVAL per call (the three decisions are one batch call), no further reload.
        expect(await commandCalls(admin, 'eval')).toBe(evalsBefore + 3);
        expect(totalLoads(store)).toBe(loadsBefore);
      } finally {
        await admin.function('FLUSH');
      }
    });

    it('rethrows other errors as StoreError without reloading', async () => {
      const { client } = await connect(server);
      const store = new RedisStore({ client });
      await store.ready();
      const limit = perMinute();
      await admin.set(limit.key, 'not a list');
      const failure = store.consume([limit], 1);
      await expect(failure).rejects.toBeInstanceOf(StoreError);
      await expect(failure).rejects.toThrow(/Redis script consume failed: .*WRONGTYPE/);
      expect(totalLoads(store)).toBe(1);
    });

    it.each([
      ['no store time first', "cmsgpack.pack({'now', 1, 0, 0, 0, 0, 0, 0})", /malformed reply from Redis script batch \(expected the store time first\)/],
      ['two integers for a consume', 'cmsgpack.pack({0, 1, 2})', /malformed reply from Redis script batch \(expected 7 integers at 1\)/],
      ['an index out of range', 'cmsgpack.pack({0, 1, 5, 0, 0, 0, 0, 0})', /malformed reply from Redis script batch \(expected allowed [0-9|]+ and index in \[0, 0\]\)/],
      ['a value too many', 'cmsgpack.pack({0, 1, 0, 0, 0, 0, 0, 0, 7})', /malformed reply from Redis script batch \(expected 8 values for 1 decisions\)/],
      ['a one-log reply cut short', 'cmsgpack.pack({0, 3, 5, 0})', /malformed reply from Redis script batch \(expected 3 integers >= 0 after 3 at 1\)/],
      ['a one-log reply with a negative difference', 'cmsgpack.pack({1700000000000, 3, 5, -1, 0})', /malformed reply from Redis script batch \(expected 3 integers >= 0 after 3 at 1\)/],
      ['a run of decisions longer than the call', 'cmsgpack.pack({0, -2, 1, 0, 0, 0, 0, 0, 0})', /malformed reply from Redis script batch \(a run of 2 at 1 for 1 decisions\)/],
      ['a run of one', 'cmsgpack.pack({0, -1, 3, 0, 0, 0})', /malformed reply from Redis script batch \(a run of 1 at 1 for 1 decisions\)/],
      ['an array not packed', '{0, 1, 0, 0, 0, 0, 0, 0}', /malformed reply from Redis script batch \(expected a MessagePack bulk string\)/],
      ['a string that is no packed array', "'OK'", /malformed reply from Redis script batch \(not a MessagePack array: .*\)/],
      ['a packed array cut short', "string.sub(cmsgpack.pack({0, 1, 0, 0, 0, 0, 1700000000000, 0}), 1, -3)", /malformed reply from Redis script batch \(not a MessagePack array: truncated .*\)/],
    ])('turns a malformed reply (%s) into a StoreError naming the script', async (_label, reply, message) => {
      const { client } = await connect(server);
      const store = new RedisStore({ client });
      await store.ready();
      const impostor = `#!lua name=${library.name}\nredis.register_function('${bindings.batch.script.functionName}', function() return ${reply} end)`;
      await admin.function('LOAD', 'REPLACE', impostor);
      const failure = store.consume([perMinute()], 1);
      await expect(failure).rejects.toBeInstanceOf(StoreError);
      await expect(failure).rejects.toThrow(message);
      await admin.function('FLUSH');
    });

    it('is refused before writing anything when Redis is out of memory (no allow-oom flag)', async () => {
      const { client } = await connect(server);
      const store = new RedisStore({ client });
      await store.ready();
      const limit = perMinute();
      await admin.config('SET', 'maxmemory', '1');
      try {
        await expect(store.consume([limit], 1)).rejects.toThrow(/OOM/);
      } finally {
        await admin.config('SET', 'maxmemory', '0');
      }
      expect(await admin.exists(limit.key)).toBe(0);
    });

    it('reads binary bodies back byte for byte (replies read as Buffers where the store needs them)', async () => {
      const { client } = await connect(server);
      const store = new RedisStore({ client });
      const keys = { record: `idem:{${uniqueId('bin')}}`, fence: `idem:{x}:fence` };
      const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      expect(await store.beginIdempotent(keys, 't', 'fp', 10_000)).toMatchObject({ state: 'acquired' });
      expect(await store.completeIdempotent(keys, 't', { status: 200, headers: { 'content-type': 'application/octet-stream' }, body }, 10_000)).toBe(true);
      const replay = await store.beginIdempotent(keys, 'u', 'fp', 10_000);
      expect(replay.state === 'replay' && Buffer.compare(replay.response.body!, body)).toBe(0);
    });
  });

  describe('EVALSHA fallback', () => {
    let server: RedisServerHandle;
    let admin: Redis;
    beforeAll(async () => {
      server = await startRedisServer();
      admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    });
    afterAll(async () => {
      admin.disconnect();
      await server.stop();
    });

    it('sends EVALSHA, falls back to EVAL on NOSCRIPT after SCRIPT FLUSH, then EVALSHA again', async () => {
      const { client } = await connect(server);
      const store = redisStoreForTests(client, { mode: 'eval' });
      await store.ready();
      const limit = perMinute();
      await store.consume([limit], 1);
      // The monitored client must be ready first: its own ready check (INFO), relayed to the MONITOR
      // connection before ioredis has switched that to monitor mode, fails it with "Command queue
      // state error" (seen once in CI).
      const watched = adminOf(server);
      await watched.ping();
      const monitor = await watched.monitor();
      const seen: string[] = [];
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (/^eval/i.test(args[0] ?? '')) seen.push(`${args[0]!.toUpperCase()} ${args[1] === bindings.batch.script.sha1 ? 'sha' : 'source'}`);
      });
      await admin.script('FLUSH');
      await store.consume([limit], 1);
      await store.consume([limit], 1);
      await admin.ping(); // MONITOR has relayed everything before this reply
      await sleep(50);
      monitor.disconnect();
      expect(seen).toEqual(['EVALSHA sha', 'EVAL source', 'EVALSHA sha']);
      expect(await admin.llen(limit.key)).toBe(3);
      expect(scriptStats(store).mode).toBe('eval');
    });

    it('reloads every concurrent call after SCRIPT FLUSH', async () => {
      const { client } = await connect(server);
      const store = redisStoreForTests(client, { mode: 'eval' });
      await store.ready();
      const limit = perMinute(100_000);
      for (let flush = 0; flush < 3; flush++) {
        await admin.script('FLUSH');
        const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.consume([limit], 1)));
        expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
      }
      expect(await admin.llen(limit.key)).toBe(150);
    });

    // A review found every call failing for good: the ACL denied FUNCTION LOAD, EVAL was allowed.
    it('is chosen by itself when the ACL denies FUNCTION (NOPERM) but allows EVAL', async () => {
      const user = uniqueId('nofunc').replace(/[^a-z0-9-]/gi, '');
      await admin.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '+@all', '-function');
      try {
        const url = new URL(server.url);
        url.username = user;
        url.password = 'pw';
        const { client } = await connect({ ...server, url: url.toString() } as RedisServerHandle);
        const store = new RedisStore({ client });
        await store.ready();
        const limit = perMinute(2);
        expect(await store.consume([limit], 1)).toMatchObject({ allowed: true, remaining: 1 });
        expect(await store.consume([limit], 2)).toMatchObject({ allowed: false, remaining: 1 });
        expect(scriptStats(store).mode).toBe('eval');
      } finally {
        await admin.call('ACL', 'DELUSER', user);
      }
    });

    it('is chosen by itself on a server without the FUNCTION command', async () => {
      const functionless = await startRedisServer({ args: ['--rename-command', 'FUNCTION', '""'] });
      try {
        const { client } = await connect(functionless);
        const store = new RedisStore({ client });
        await store.ready(); // connects; FUNCTION LOAD fails as an unknown command
        const limit = perMinute(2);
        expect(await store.consume([limit], 1)).toMatchObject({ allowed: true, remaining: 1 });
        expect(await store.consume([limit], 2)).toMatchObject({ allowed: false, remaining: 1 });
        expect(scriptStats(store).mode).toBe('eval');
        expect(await adminOf(functionless).script('EXISTS', bindings.batch.script.sha1)).toEqual([1]);
      } finally {
        await functionless.stop();
      }
    });
  });

  describe('a store whose client points at a replica', () => {
    // GLIDE's standalone client looks for the primary among its addresses and refuses to start without one.
    if (kind === 'glide') {
      it('GLIDE: a client cannot be created on a replica alone (no primary), so no store can point at one', async () => {
        const master = await startRedisServer();
        const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
        try {
          await expect(connect(replica)).rejects.toThrow(/No primary node found/);
        } finally {
          await replica.stop();
          await master.stop();
        }
      });
      return;
    }

    it(`answers READONLY as a store error and sends FUNCTION LOAD at most once per ${LOAD_REFUSAL_MS} ms, not with every call`, async () => {
      const master = await startRedisServer();
      const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
      try {
        // A replica refuses writes (READONLY) whether its link to the master is up yet or not.
        const replicaAdmin = adminOf(replica);
        const { client } = await connect(replica);
        const store = new RedisStore({ client });
        const before = await commandAttempts(replicaAdmin, 'function|load');
        const started = performance.now();
        const outcomes = [];
        for (let i = 0; i < 20; i++) outcomes.push(await store.consume([perMinute()], 1).then(() => 'allowed', (err: Error) => err.message));
        const elapsed = performance.now() - started;
        const loads = (await commandAttempts(replicaAdmin, 'function|load')) - before;
        expect(outcomes.every((outcome) => /READONLY/.test(outcome))).toBe(true);
        // The constructor's background load and the first call share one attempt; later ones wait out the refusal.
        expect(loads).toBeLessThanOrEqual(1 + Math.floor(elapsed / LOAD_REFUSAL_MS));
      } finally {
        await replica.stop();
        await master.stop();
      }
    });
  });

  describe('Redis unavailable', () => {
    it('fails within the budget, then at once without sending, while Redis is down', async () => {
      const server = await startRedisServer();
      try {
        const { client } = await connect(server);
        const store = new RedisStore({ client });
        await store.ready();
        const limiter = new RateLimiter({ store, limit: 1_000, window: '1m', timeout: 300, logger: { warn: () => undefined } });
        await server.stop();
        await sleep(50); // the client sees its connection close (where it can tell)
        const samples: { at: number; ms: number; reason: string }[] = [];
        const loop = watchEventLoop(); // a budget's timer fires no earlier than the loop lets it
        const origin = performance.now();
        while (performance.now() - origin < 1_500) {
          const started = performance.now();
          const decision = await limiter.consume(uniqueId('down'));
          samples.push({ at: started - origin, ms: performance.now() - started, reason: decision.reason });
          await sleep(20);
        }
        expect(samples.every((sample) => sample.reason === 'store-error' || sample.reason === 'store-timeout')).toBe(true);
        expect(Math.max(...samples.map((sample) => sample.ms))).toBeLessThan(300 + 100 + loop().max);
        // Clients that report their connection state fail fast from the start. GLIDE reports none and
        // holds each request (its own timeout, 5 s here): one call at a time, each waiting its budget,
        // the first two are sent (the second finds the first unanswered for longer than the 300 ms
        // budget, the silence the store allows, which confirms the stall a turn later), the third goes as the probe, and every later one fails at once,
        // unsent, until the next probe is due (≥ MAX_PROBE_INTERVAL_MS after the first, past the loop).
        const slow = samples.filter((sample) => sample.ms >= 50);
        const fast = samples.filter((sample) => sample.ms < 50);
        expect(slow.length).toBeLessThanOrEqual(kind === 'glide' ? 3 : 0);
        expect(fast.length).toBeGreaterThanOrEqual(10);
        expect(fast.every((sample) => sample.reason === 'store-error')).toBe(true);
        if (kind === 'glide') expect(samples.slice(slow.length).every((sample) => sample.ms < 50)).toBe(true); // the slow ones come first
      } finally {
        await server.stop();
      }
    });

    // A review found node-redis waiting the whole budget on every call (Redis not up at start-up):
    // its client stays "open" while it retries, which read as the first attempt going on.
    it.skipIf(kind === 'glide')('fails at once, unsent, after the first connection attempt failed (Redis not up at start-up)', async () => {
      const server = await startRedisServer();
      await server.stop(); // its port: nothing listens there now
      const { client } = await connect(server, { connection: 'start' });
      const store = new RedisStore({ client });
      const limiter = new RateLimiter({ store, limit: 10, window: '1m', timeout: 300, logger: { warn: () => undefined } });
      await sleep(500); // the first attempt has failed; the client retries on its own
      const loop = watchEventLoop();
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const decision = await limiter.consume(uniqueId('never'));
        expect(decision.reason).toBe('store-error');
        expect(decision.error).toMatchObject({ notSent: true });
        expect(performance.now() - started).toBeLessThan(50 + loop().max);
      }
    });

    it('sends a call made during the first connection once connected (an app serving right after start-up)', async () => {
      const server = await startRedisServer();
      try {
        const { client } = await connect(server, { connection: 'start' });
        const store = new RedisStore({ client }); // starts connecting and loading in the background
        await expect(store.acquireLock({ lock: 'l', fence: 'f' }, 't', 1000)).resolves.toMatchObject({ acquired: true });
      } finally {
        await server.stop();
      }
    });
  });
});

describe('ioredis only', () => {
  it('computes the SHA1 that SCRIPT LOAD answers, for every script', async () => {
    const server = await startRedisServer();
    try {
      const admin = adminOf(server);
      for (const { script } of Object.values(bindings)) {
        expect(await admin.script('LOAD', script.evalSource)).toBe(script.sha1);
      }
    } finally {
      await server.stop();
    }
  });

  it('sends a call made before a lazyConnect client connected once it has', async () => {
    const server = await startRedisServer();
    try {
      const client = new Redis(server.url, { maxRetriesPerRequest: 1, lazyConnect: true });
      open.push(client);
      expect(client.status).toBe('wait');
      const store = new RedisStore({ client });
      await expect(store.acquireLock({ lock: 'l', fence: 'f' }, 't', 1000)).resolves.toMatchObject({ acquired: true });
    } finally {
      await server.stop();
    }
  });

  it('fails fast once a client that was ready is reconnecting, even mid-reconnect ("connecting")', async () => {
    const server = await startRedisServer();
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => {});
    open.push(client);
    try {
      const store = new RedisStore({ client });
      await store.ready();
      await server.stop();
      for (const status of ['reconnecting', 'connecting', 'connect']) {
        Object.defineProperty(client, 'status', { value: status, configurable: true, writable: true });
        await expect(store.consume([perMinute()], 1)).rejects.toThrow(`not ready (status: ${status})`);
      }
    } finally {
      await server.stop();
    }
  });

  it('fails fast with a StoreError when the client is not ready, instead of queueing', async () => {
    const server = await startRedisServer();
    try {
      const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
      client.on('error', () => {});
      open.push(client);
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
});
