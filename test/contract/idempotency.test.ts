/**
 * Store contract, idempotency records: begin → acquired / in-flight / mismatch / replay, the
 * token checks of extend / complete / abort, lease expiry, and a byte-exact round trip of a
 * binary response. Real time on every kind, with explicit tolerances.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { idempotencyKeys } from '../../src/core/store-keys.js';
import type { IdempotencyKeys, StoredResponse } from '../../src/core/store.js';
import { contractStoreKinds, uniqueId } from '../helpers/stores.js';
import { useStore } from './fixtures.js';

const LEASE_MS = 30_000;
const REPLAY_TTL_MS = 60_000;
const freshRecord = (): IdempotencyKeys => idempotencyKeys('idem:', uniqueId('payment'));

/** Every byte value, NUL and invalid UTF-8 included. */
const binaryBody = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));
const response: StoredResponse = {
  status: 201,
  headers: { 'content-type': 'application/octet-stream', link: ['</a>; rel="a"', '</b>; rel="b"'] },
  body: binaryBody,
};

describe.each(contractStoreKinds)('%s store: idempotency records', (kind) => {
  const store = useStore(kind);

  it('runs a request once: acquired, then in-flight for duplicates, then replay of the stored response', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    const begun = await store().beginIdempotent(keys, holder, 'fp-1', LEASE_MS);
    expect(begun).toMatchObject({ state: 'acquired' });
    expect(begun.state === 'acquired' && begun.fence).toBeGreaterThan(0);

    const duplicate = await store().beginIdempotent(keys, randomUUID(), 'fp-1', LEASE_MS);
    expect(duplicate.state).toBe('in-flight');
    expect(duplicate.state === 'in-flight' && duplicate.retryAfterMs).toBeGreaterThan(0);
    expect(duplicate.state === 'in-flight' && duplicate.retryAfterMs).toBeLessThanOrEqual(LEASE_MS);

    expect(await store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS)).toBe(true);
    const replay = await store().beginIdempotent(keys, randomUUID(), 'fp-1', LEASE_MS);
    expect(replay.state).toBe('replay');
    if (replay.state !== 'replay') return;
    expect(replay.response.status).toBe(201);
    expect(replay.response.headers).toEqual(response.headers);
    expect(Buffer.isBuffer(replay.response.body)).toBe(true);
    expect(replay.response.body!.equals(binaryBody)).toBe(true);
  });

  it('answers mismatch to another fingerprint, while in flight and once done', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    await store().beginIdempotent(keys, holder, 'fp-1', LEASE_MS);
    expect(await store().beginIdempotent(keys, randomUUID(), 'fp-2', LEASE_MS)).toEqual({ state: 'mismatch' });
    await store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS);
    expect(await store().beginIdempotent(keys, randomUUID(), 'fp-2', LEASE_MS)).toEqual({ state: 'mismatch' });
  });

  it('replays a response stored as not replayable (body null) as such', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    await store().beginIdempotent(keys, holder, 'fp', LEASE_MS);
    const notReplayable: StoredResponse = { status: 200, headers: {}, body: null };
    expect(await store().completeIdempotent(keys, holder, notReplayable, REPLAY_TTL_MS)).toBe(true);
    expect(await store().beginIdempotent(keys, randomUUID(), 'fp', LEASE_MS)).toEqual({ state: 'replay', response: notReplayable });
  });

  it('extends, completes and aborts only for the holder’s token, and only while running', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    const other = randomUUID();
    await store().beginIdempotent(keys, holder, 'fp', LEASE_MS);
    expect(await store().extendIdempotent(keys, other, LEASE_MS)).toBe(false);
    expect(await store().completeIdempotent(keys, other, response, REPLAY_TTL_MS)).toBe(false);
    expect(await store().abortIdempotent(keys, other)).toBe(false);
    expect(await store().extendIdempotent(keys, holder, LEASE_MS)).toBe(true);
    expect(await store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS)).toBe(true);
    // Done: nothing may change the stored response any more.
    expect(await store().extendIdempotent(keys, holder, LEASE_MS)).toBe(false);
    // The holder's complete again (retried after a failure that landed) answers true, changing nothing.
    expect(await store().completeIdempotent(keys, holder, { ...response, status: 500 }, REPLAY_TTL_MS)).toBe(true);
    expect(await store().completeIdempotent(keys, other, { ...response, status: 500 }, REPLAY_TTL_MS)).toBe(false);
    expect(await store().abortIdempotent(keys, holder)).toBe(false);
    const replay = await store().beginIdempotent(keys, other, 'fp', LEASE_MS);
    expect(replay.state === 'replay' && replay.response.status).toBe(201);
  });

  it('abort deletes the running record, so a retry runs again with a greater fence', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    const first = await store().beginIdempotent(keys, holder, 'fp', LEASE_MS);
    expect(await store().abortIdempotent(keys, holder)).toBe(true);
    const retry = await store().beginIdempotent(keys, randomUUID(), 'fp', LEASE_MS);
    expect(retry.state).toBe('acquired');
    expect(first.state === 'acquired' && retry.state === 'acquired' && retry.fence > first.fence).toBe(true);
  });

  it('treats a begin re-sent by the holder as acquired, with the same fence', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    const first = await store().beginIdempotent(keys, holder, 'fp', LEASE_MS);
    expect(await store().beginIdempotent(keys, holder, 'fp', LEASE_MS)).toEqual(first);
  });

  it('lets a retry take over once the lease expires; the stale holder can no longer complete', async () => {
    const keys = freshRecord();
    const stale = randomUUID();
    await store().beginIdempotent(keys, stale, 'fp', 100);
    await sleep(250);
    const next = randomUUID();
    expect(await store().beginIdempotent(keys, next, 'fp', LEASE_MS)).toMatchObject({ state: 'acquired' });
    expect(await store().completeIdempotent(keys, stale, { ...response, status: 500 }, REPLAY_TTL_MS)).toBe(false);
    expect(await store().completeIdempotent(keys, next, response, REPLAY_TTL_MS)).toBe(true);
    const replay = await store().beginIdempotent(keys, randomUUID(), 'fp', LEASE_MS);
    expect(replay.state === 'replay' && replay.response.status).toBe(201);
  });

  // A holder whose lease lapsed (Redis froze past it, the handler outran it) still completes
  // when nobody began since: the key's fence is still its run's, so the operation ran once.
  describe('a complete after the lease lapsed', () => {
    /** Begins a record with a 100 ms lease and lets it lapse; returns the holder and its run. */
    async function lapsedRun(keys: IdempotencyKeys) {
      const holder = randomUUID();
      const begun = await store().beginIdempotent(keys, holder, 'fp', 100);
      if (begun.state !== 'acquired') throw new Error(`expected acquired, got ${begun.state}`);
      await sleep(250);
      return { holder, run: { fence: begun.fence, fingerprint: 'fp' } };
    }

    it('stores the response when no request began since, and a retry replays it', async () => {
      const keys = freshRecord();
      const { holder, run } = await lapsedRun(keys);
      expect(await store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS, run)).toBe(true);
      // Sent again (a retry after a failure that landed): true, the stored response unchanged.
      expect(await store().completeIdempotent(keys, holder, { ...response, status: 500 }, REPLAY_TTL_MS, run)).toBe(true);
      const replay = await store().beginIdempotent(keys, randomUUID(), 'fp', LEASE_MS);
      expect(replay.state).toBe('replay');
      expect(replay.state === 'replay' && replay.response.status).toBe(201);
      expect(replay.state === 'replay' && replay.response.body!.equals(binaryBody)).toBe(true);
      // The record keeps the run's fingerprint: another request under the same id is refused.
      expect(await store().beginIdempotent(keys, randomUUID(), 'fp-other', LEASE_MS)).toEqual({ state: 'mismatch' });
    });

    it('refuses once another request has begun, running or aborted, and leaves its record alone', async () => {
      const running = freshRecord();
      const lapsed = await lapsedRun(running);
      const next = randomUUID();
      expect(await store().beginIdempotent(running, next, 'fp', LEASE_MS)).toMatchObject({ state: 'acquired' });
      expect(await store().completeIdempotent(running, lapsed.holder, { ...response, status: 500 }, REPLAY_TTL_MS, lapsed.run)).toBe(false);
      expect(await store().beginIdempotent(running, randomUUID(), 'fp', LEASE_MS)).toMatchObject({ state: 'in-flight' });
      expect(await store().completeIdempotent(running, next, response, REPLAY_TTL_MS)).toBe(true);

      const aborted = freshRecord();
      const first = await lapsedRun(aborted);
      const other = randomUUID();
      await store().beginIdempotent(aborted, other, 'fp', LEASE_MS);
      expect(await store().abortIdempotent(aborted, other)).toBe(true);
      expect(await store().completeIdempotent(aborted, first.holder, response, REPLAY_TTL_MS, first.run)).toBe(false);
      expect(await store().beginIdempotent(aborted, randomUUID(), 'fp', LEASE_MS)).toMatchObject({ state: 'acquired' });
    });

    it('refuses without the run, or with another fence', async () => {
      const keys = freshRecord();
      const { holder, run } = await lapsedRun(keys);
      expect(await store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS)).toBe(false);
      expect(await store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS, { ...run, fence: run.fence - 1 })).toBe(false);
      expect(await store().beginIdempotent(keys, randomUUID(), 'fp', LEASE_MS)).toMatchObject({ state: 'acquired' });
    });

    it('rejects a malformed run with a ConfigError', async () => {
      const keys = freshRecord();
      const holder = randomUUID();
      await store().beginIdempotent(keys, holder, 'fp', LEASE_MS);
      for (const run of [{ fence: 1.5, fingerprint: 'fp' }, { fence: 0, fingerprint: 'fp' }, { fence: 1, fingerprint: 7 }, 'run']) {
        await expect(store().completeIdempotent(keys, holder, response, REPLAY_TTL_MS, run as never)).rejects.toBeInstanceOf(ConfigError);
      }
    });
  });

  it('forgets a done record once its ttl ends', async () => {
    const keys = freshRecord();
    const holder = randomUUID();
    await store().beginIdempotent(keys, holder, 'fp', LEASE_MS);
    await store().completeIdempotent(keys, holder, response, 100);
    await sleep(250);
    expect(await store().beginIdempotent(keys, randomUUID(), 'fp-other', LEASE_MS)).toMatchObject({ state: 'acquired' });
  });
});
