/**
 * The stores must be interchangeable: on random request/time sequences, MemoryStore and the Lua
 * scripts on standalone Redis give identical ConsumeResults (deep-equal: allowed, index,
 * remaining, resetMs, retryAfterMs, stamp, nextQuotaMs), and so do standalone Redis and Redis Cluster. Every
 * store runs on its own copy of one virtual clock (injected through src/stores/testing.ts).
 * fast-check prints the seed and path of a failing run; replay it with PROPERTY_SEED /
 * PROPERTY_PATH (see operations.ts). Runs mix sliding logs with GCRA limits (half the policies)
 * and carry a penalty box half the time.
 *
 * RedisStore coalesces the decisions of one event-loop turn into batch calls, so the pairs run
 * twice over: played one operation at a time (batches of one), and in turns (operations at the
 * same time made together: batches of many, mixing keys, limits, costs, consume / peek / refund),
 * on plain Redis (a client's repeats back to back: a hot key's path) and on the crowded kinds (each
 * decision among unrelated ones, bounds so small that a turn takes several calls; on Cluster
 * grouped per master and per slot), against MemoryStore deciding them one by one.
 *
 * Every other client (test/helpers/clients.ts: node-redis 6 RESP2 / RESP3, node-redis 5, GLIDE)
 * plays the same sequences against MemoryStore: standalone one operation at a time, Cluster and
 * the crowded Cluster kinds in turns (cross-slot calls through that client's own connections).
 *
 * Bounded for CI: 500 runs (300 in turns) × up to 50 operations per pair on ioredis, a few seconds
 * each; 60 runs per pair on the other clients (the Lua is the same; what differs is the transport:
 * arguments, replies, routing), ~1 s each.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindings, library } from '../../src/stores/redis/bindings.js';
import { ScriptRunner } from '../../src/stores/redis/script-runner.js';
import { detectClient } from '../../src/stores/redis/clients/index.js';
import { newRedisClient } from '../helpers/redis.js';
import { type StoreKind, type TestStore, clientStoreKinds, createTestStore, crowdedClientStoreKinds, uniqueId } from '../helpers/stores.js';
import { type PlayMode, type Player, type RunConfig, VirtualClock, mixedRunConfigArbitrary, play, propertyParameters, runConfigArbitrary, sequenceArbitrary, storePlayer } from './operations.js';

const RUNS = 500;
const TURN_RUNS = 300;
/** Runs per pair on the clients other than ioredis. */
const CLIENT_RUNS = 60;
const MAX_OPERATIONS = 50;
/** Each run starts far from the previous one, as a fresh process would. */
const RUN_SPACING_MS = 10_000_000;

/** A test store whose virtual clock can be replaced between runs. */
class ClockedStore {
  clock = new VirtualClock(0);
  test!: TestStore;

  constructor(readonly kind: StoreKind) {}

  async open(): Promise<void> {
    this.test = await createTestStore(this.kind, { clock: () => this.clock.now });
  }

  async close(): Promise<void> {
    await this.test.flush();
    await this.test.close();
  }
}

function equivalence(left: StoreKind, right: StoreKind, mode: PlayMode, runs: number, configs: fc.Arbitrary<RunConfig> = mixedRunConfigArbitrary, what = ''): void {
  describe(`${left} vs ${right} store, ${mode === 'turns' ? 'in turns' : 'one at a time'}${what} (property)`, () => {
    const a = new ClockedStore(left);
    const b = new ClockedStore(right);
    beforeAll(async () => {
      await a.open();
      await b.open();
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('gives identical results on random request/time sequences', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(sequenceArbitrary(MAX_OPERATIONS, configs), async ([config, operations]) => {
          const start = 1_750_000_000_000 + ++run * RUN_SPACING_MS;
          a.clock = new VirtualClock(start);
          b.clock = new VirtualClock(start);
          const runId = uniqueId('property');
          const expected = await play(storePlayer(a.test.store), a.clock, config, operations, runId, mode);
          const actual = await play(storePlayer(b.test.store), b.clock, config, operations, runId, mode);
          expect(actual).toEqual(expected);
        }),
        propertyParameters(runs),
      );
    }, 60_000);
  });
}

equivalence('memory', 'redis', 'sequential', RUNS);
equivalence('redis', 'cluster', 'sequential', RUNS);
// Without a crowd, a turn's consecutive decisions of one client and limits repeat their keys in one
// call (a hot key: sent once, its state reused, a repeat decided by consume_known_log).
equivalence('memory', 'redis', 'turns', TURN_RUNS);
// Sliding logs alone, no penalty box: every one-limit consume of cost 1 takes the script's
// first-look path (consume_one_log), long logs included.
equivalence('memory', 'redis', 'sequential', RUNS, runConfigArbitrary, ', sliding logs only');
equivalence('memory', 'redis', 'turns', TURN_RUNS, runConfigArbitrary, ', sliding logs only');
equivalence('memory', 'redis-crowded', 'turns', TURN_RUNS);
equivalence('memory', 'cluster-crowded', 'turns', TURN_RUNS);
equivalence('memory', 'cluster-by-slot', 'turns', TURN_RUNS);
for (const kind of clientStoreKinds) equivalence('memory', kind, kind.startsWith('cluster') ? 'turns' : 'sequential', CLIENT_RUNS);
for (const kind of crowdedClientStoreKinds) equivalence('memory', kind, 'turns', CLIENT_RUNS);

/**
 * The single-decision functions (consume, peek, refund) stay in the library beside the batch
 * function RedisStore calls: called directly through their bindings, they too answer as
 * MemoryStore does.
 */
describe('memory store vs the single-decision Lua functions, one at a time (property)', () => {
  const memory = new ClockedStore('memory');
  let redisClock = new VirtualClock(0);
  let client: Redis;
  let runner: ScriptRunner;
  beforeAll(async () => {
    await memory.open();
    client = newRedisClient();
    runner = new ScriptRunner(detectClient(client)!, library, { clock: () => redisClock.now });
    await runner.ready();
  });
  afterAll(async () => {
    await memory.close();
    await client.flushdb(); // this worker's own DB (see test/helpers/redis.ts)
    await client.quit();
  });

  it('gives identical results on random request/time sequences', async () => {
    const single: Player = {
      consume: (limits, cost) => runner.run(bindings.consume, { limits, cost }),
      peek: (limits, cost) => runner.run(bindings.peek, { limits, cost }),
      refund: async (limits, cost, stamp) => {
        await runner.run(bindings.refund, { limits, cost, stamp });
      },
    };
    let run = 0;
    await fc.assert(
      fc.asyncProperty(sequenceArbitrary(MAX_OPERATIONS, mixedRunConfigArbitrary), async ([config, operations]) => {
        const start = 1_750_000_000_000 + ++run * RUN_SPACING_MS;
        memory.clock = new VirtualClock(start);
        redisClock = new VirtualClock(start);
        const runId = uniqueId('property-single');
        const expected = await play(storePlayer(memory.test.store), memory.clock, config, operations, runId);
        const actual = await play(single, redisClock, config, operations, runId);
        expect(actual).toEqual(expected);
      }),
      propertyParameters(TURN_RUNS),
    );
  }, 60_000);
});
