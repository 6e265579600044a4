/**
 * withLock({ replay }) on Express 5/4, Koa 3/2, Fastify and Hono over every store kind: the first request runs
 * and its response is stored; retries get it back byte for byte with `Idempotent-Replayed: true`
 * (allowlisted headers only, never Set-Cookie); concurrent duplicates get 409 (or, with `wait`,
 * the replay); a reused key with another request gets 422, also in flight; bad keys get 400;
 * clients never see or block each other's records; thrown errors, 5xx and 429 are not stored.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/keys/index.js';
import { createTestStore, storeKinds, uniqueId, type TestStore } from '../helpers/stores.js';
import { frameworkNames, type Reply } from './support/apps.js';
import { serve, deferred } from './support/serve.js';
import { send, type TestResponse } from './support/http.js';

const sha256 = (body: Buffer): string => createHash('sha256').update(body).digest('hex');
const idem = (key: string, extra: Record<string, string> = {}) => ({ 'Idempotency-Key': key, ...extra });
const problemCode = (response: TestResponse): unknown => {
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  return response.json().code;
};

describe.each(storeKinds)('%s store', (kind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await createTestStore(kind);
  });
  afterAll(() => t.close());

  describe.each(frameworkNames)('%s', (name) => {
    /** An app whose handler counts its runs and answers `reply(run)`. */
    async function replayApp(reply: (run: number, input: { body: unknown }) => Reply | Promise<Reply>, replay: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
      const state = { runs: 0 };
      const port = await serve(name, {
        lock: { store: t.store, replay, ...extra },
        handler: (input) => reply(++state.runs, input),
      });
      return { port, state };
    }

    it('replays status, body (byte-identical) and allowlisted headers; never Set-Cookie', async () => {
      const { port, state } = await replayApp(
        (run) => ({
          status: 201,
          headers: {
            Location: '/orders/42',
            ETag: '"v1"',
            'Set-Cookie': 'session=secret; HttpOnly',
            'Cache-Control': 'private, max-age=60',
            'X-Request-Run': String(run),
            'X-Order-Id': '42',
          },
          body: { id: 42, run, note: 'ünïcödé', amount: 10.5 },
        }),
        { headers: ['x-order-id'] },
      );
      const key = uniqueId('order');
      const first = await send(port, { headers: idem(key), body: { amount: 10.5 } });
      const retry = await send(port, { headers: idem(key), body: { amount: 10.5 } });
      expect(state.runs).toBe(1);
      expect(first.status).toBe(201);
      expect(first.headers['set-cookie']).toBeDefined();
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(sha256(retry.body)).toBe(sha256(first.body));
      expect(retry.headers['content-type']).toBe(first.headers['content-type']);
      expect(retry.headers.location).toBe('/orders/42');
      expect(retry.headers.etag).toBe('"v1"');
      expect(retry.headers['x-order-id']).toBe('42');
      expect(retry.headers['set-cookie']).toBeUndefined();
      expect(retry.headers['cache-control']).toBeUndefined();
      expect(retry.headers['x-request-run']).toBeUndefined();
      expect(retry.headers.date).toBeDefined();
      expect(Number(retry.headers['content-length'])).toBe(retry.body.length);
    });

    // A HEAD response's Content-Length describes the GET's body, not its own empty one: the replay
    // must not claim 0 where the first answer said otherwise (Fastify and Hono once did).
    it('replays a HEAD answer with the first answer’s Content-Length (or none, as it had), and no body', async () => {
      const { port, state } = await replayApp(() => ({ status: 200, body: { id: 7, note: 'head' } }));
      const key = uniqueId('head');
      const first = await send(port, { method: 'HEAD', headers: idem(key) });
      const retry = await send(port, { method: 'HEAD', headers: idem(key) });
      expect(state.runs).toBe(1);
      expect([first.status, retry.status]).toEqual([200, 200]);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.length).toBe(0);
      expect(retry.headers['content-length']).toBe(first.headers['content-length']);
      expect(retry.headers['content-type']).toBe(first.headers['content-type']);
    });

    it('replays a 204 with no Content-Length or Content-Type the first answer did not have', async () => {
      const { port, state } = await replayApp(() => ({ status: 204 }));
      const key = uniqueId('no-content');
      const first = await send(port, { headers: idem(key), body: {} });
      const retry = await send(port, { headers: idem(key), body: {} });
      expect(state.runs).toBe(1);
      expect([first.status, retry.status]).toEqual([204, 204]);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.headers['content-length']).toBe(first.headers['content-length']);
      expect(retry.headers['content-type']).toBe(first.headers['content-type']);
    });

    it('runs one of 10 concurrent duplicates: 409 for the others, or the replay when they wait', async () => {
      const [release, releaseHandler] = deferred();
      const { port, state } = await replayApp(async (run) => {
        await release;
        return { status: 201, body: { run } };
      });
      const key = uniqueId('dup');
      let settled = 0;
      const responses = await Promise.all(
        Array.from({ length: 10 }, () =>
          send(port, { headers: idem(key), body: { a: 1 } }).then((response) => {
            if (++settled === 9) releaseHandler();
            return response;
          }),
        ),
      );
      expect(state.runs).toBe(1);
      expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
      const conflicts = responses.filter((r) => r.status === 409);
      expect(conflicts).toHaveLength(9);
      expect(problemCode(conflicts[0]!)).toBe('idempotency-in-flight');
      expect(Number(conflicts[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);

      const waiting = await replayApp(async (run) => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        return { status: 201, body: { run } };
      }, {}, { wait: 3_000 });
      const waitKey = uniqueId('dup-wait');
      const waited = await Promise.all(Array.from({ length: 10 }, () => send(waiting.port, { headers: idem(waitKey), body: { a: 1 } })));
      expect(waiting.state.runs).toBe(1);
      expect(waited.map((r) => r.status)).toEqual(Array(10).fill(201));
      expect(waited.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(9);
      expect(new Set(waited.map((r) => r.text)).size).toBe(1);
    });

    it('answers 422 to the same key with another body, method, path or query — also while in flight', async () => {
      const [release, releaseHandler] = deferred();
      const [started, running] = deferred();
      const { port, state } = await replayApp(async (run) => {
        running();
        if (run === 1) await release;
        return { status: 200, body: { run } };
      });
      const key = uniqueId('reuse');
      const original = { method: 'POST', path: '/pay?currency=eur&amount=5', body: { card: 'x', amount: 5 } };
      const first = send(port, { ...original, headers: idem(key) });
      await started;
      const inFlight = await send(port, { ...original, body: { card: 'y', amount: 5 }, headers: idem(key) });
      expect(inFlight.status).toBe(422);
      expect(problemCode(inFlight)).toBe('idempotency-key-reused');
      releaseHandler();
      expect((await first).status).toBe(200);

      const variants = [
        { ...original, body: { card: 'x', amount: 6 } },
        { ...original, method: 'PUT' },
        { ...original, path: '/refund?currency=eur&amount=5' },
        { ...original, path: '/pay?currency=usd&amount=5' },
      ];
      for (const variant of variants) {
        const response = await send(port, { ...variant, headers: idem(key) });
        expect(response.status).toBe(422);
      }
      // Same request with JSON keys and query parameters reordered: the same fingerprint, a replay.
      const reordered = await send(port, { method: 'POST', path: '/pay?amount=5&currency=eur', body: { amount: 5, card: 'x' }, headers: idem(key) });
      expect(reordered.status).toBe(200);
      expect(reordered.headers['idempotent-replayed']).toBe('true');
      expect(state.runs).toBe(1);
    });

    // @koa/bodyparser and Fastify's JSON parser refuse a body with a "__proto__" member outright;
    // Express's express.json() and Hono's c.req.json() keep it.
    if (name.startsWith('express') || name === 'hono') {
      it('answers 422 to a reused key whose body differs only in a "__proto__" member', async () => {
        const { port, state } = await replayApp((run) => ({ status: 201, body: { run } }));
        const key = uniqueId('proto');
        const json = (text: string) => ({ body: text, headers: idem(key, { 'content-type': 'application/json' }) });
        const first = await send(port, json('{"__proto__":{"amount":1}}'));
        const reused = await send(port, json('{"__proto__":{"amount":999}}'));
        const retry = await send(port, json('{"__proto__":{"amount":1}}'));
        expect(first.status).toBe(201);
        expect(reused.status).toBe(422);
        expect(problemCode(reused)).toBe('idempotency-key-reused');
        expect(retry.headers['idempotent-replayed']).toBe('true');
        expect(state.runs).toBe(1);
      });
    }

    it('answers 400 to a missing, empty, too long or repeated key; "abc" and abc are the same key', async () => {
      const { port, state } = await replayApp(() => ({ status: 201, body: 'made' }));
      const cases: [Record<string, string | string[]>, string][] = [
        [{}, 'idempotency-key-missing'],
        [{ 'Idempotency-Key': '' }, 'idempotency-key-invalid'],
        [{ 'Idempotency-Key': '""' }, 'idempotency-key-invalid'],
        [{ 'Idempotency-Key': 'k'.repeat(256) }, 'idempotency-key-invalid'],
        [{ 'Idempotency-Key': 'k'.repeat(10_000) }, 'idempotency-key-invalid'],
        [{ 'Idempotency-Key': ['a', 'b'] }, 'idempotency-key-invalid'],
        [{ 'Idempotency-Key': '"unterminated' }, 'idempotency-key-invalid'],
        [{ 'Idempotency-Key': 'tab\tinside' }, 'idempotency-key-invalid'],
      ];
      for (const [headers, code] of cases) {
        const response = await send(port, { headers, body: {} });
        expect(response.status, JSON.stringify(headers).slice(0, 60)).toBe(400);
        expect(problemCode(response)).toBe(code);
      }
      expect(state.runs).toBe(0);

      const key = uniqueId('quoted');
      const bare = await send(port, { headers: idem(key), body: {} });
      const quoted = await send(port, { headers: idem(`"${key}"`), body: {} });
      const maxLength = await send(port, { headers: idem('k'.repeat(255 - key.length) + key), body: {} });
      expect(bare.status).toBe(201);
      expect(quoted.status).toBe(201);
      expect(quoted.headers['idempotent-replayed']).toBe('true');
      expect(maxLength.status).toBe(201);
      expect(state.runs).toBe(2);
    });

    it('keeps clients apart: one that sends another’s key first can neither read nor block it', async () => {
      const { port, state } = await replayApp(
        (run, { body }) => ({ status: 201, body: { run, owner: (body as { owner: string }).owner } }),
        {},
        { scope: keys.header('x-client') },
      );
      const key = uniqueId('shared-key');
      const mallory = await send(port, { headers: idem(key, { 'x-client': 'mallory' }), body: { owner: 'mallory' } });
      const alice = await send(port, { headers: idem(key, { 'x-client': 'alice' }), body: { owner: 'alice' } });
      const aliceRetry = await send(port, { headers: idem(key, { 'x-client': 'alice' }), body: { owner: 'alice' } });
      expect(mallory.status).toBe(201);
      expect(alice.status).toBe(201);
      expect(alice.headers['idempotent-replayed']).toBeUndefined();
      expect(alice.json().owner).toBe('alice');
      expect(aliceRetry.json()).toEqual(alice.json());
      expect(state.runs).toBe(2);
    });

    it('stores a body over maxBodyBytes as not replayable: retries get 409 naming the original status', async () => {
      const { port, state } = await replayApp(() => ({ status: 201, body: 'x'.repeat(2_000) }), { maxBodyBytes: 1_000 });
      const key = uniqueId('big');
      const first = await send(port, { headers: idem(key), body: {} });
      expect(first.status).toBe(201);
      expect(first.body.length).toBe(2_000);
      const retry = await send(port, { headers: idem(key), body: {} });
      expect(retry.status).toBe(409);
      expect(problemCode(retry)).toBe('idempotency-not-replayable');
      expect(retry.json()['original-status']).toBe(201);
      expect(retry.headers['retry-after']).toBeUndefined();
      expect(state.runs).toBe(1);
    });

    it('captures a streamed body and replays it byte for byte', async () => {
      const chunks = ['event: 1\n', Buffer.from([0xe2, 0x82]), Buffer.from([0xac, 0x0a]), 'event: 2\n'];
      const { port, state } = await replayApp(() => ({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, chunks }));
      const key = uniqueId('stream');
      const first = await send(port, { headers: idem(key), body: {} });
      const retry = await send(port, { headers: idem(key), body: {} });
      expect(state.runs).toBe(1);
      expect(first.text).toBe('event: 1\n€\nevent: 2\n');
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.equals(first.body)).toBe(true);
      expect(retry.headers['content-type']).toBe('text/event-stream');
    });

    it('aborts the record when the handler throws, so the retry runs; 4xx answers are stored', async () => {
      const { port, state } = await replayApp((run) => {
        if (run === 1) throw new Error('db down');
        return { status: 404, body: { error: 'no such cart' } };
      });
      const key = uniqueId('throws');
      const failed = await send(port, { headers: idem(key), body: {} });
      expect(failed.status).toBe(500);
      const retry = await send(port, { headers: idem(key), body: {} });
      expect(retry.status).toBe(404);
      const again = await send(port, { headers: idem(key), body: {} });
      expect(again.status).toBe(404);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(state.runs).toBe(2);
    });

    it('does not store 5xx unless storeServerErrors, and never stores 429 or 503', async () => {
      const plain = await replayApp(() => ({ status: 500, body: 'oops' }));
      const key = uniqueId('5xx');
      await send(plain.port, { headers: idem(key), body: {} });
      await send(plain.port, { headers: idem(key), body: {} });
      expect(plain.state.runs).toBe(2);

      const stored = await replayApp((run, { body }) => ({ status: (body as { status: number }).status, body: `run ${run}` }), { storeServerErrors: true });
      const kept = uniqueId('5xx-kept');
      const first = await send(stored.port, { headers: idem(kept), body: { status: 500 } });
      const replayed = await send(stored.port, { headers: idem(kept), body: { status: 500 } });
      expect(first.status).toBe(500);
      expect(replayed.status).toBe(500);
      expect(replayed.headers['idempotent-replayed']).toBe('true');
      expect(replayed.text).toBe(first.text);
      for (const status of [429, 503]) {
        const transient = uniqueId(`transient-${status}`);
        const once = await send(stored.port, { headers: idem(transient), body: { status } });
        const twice = await send(stored.port, { headers: idem(transient), body: { status } });
        expect([once.status, twice.status]).toEqual([status, status]);
        expect(twice.headers['idempotent-replayed']).toBeUndefined();
        expect(twice.text).not.toBe(once.text);
      }
      expect(stored.state.runs).toBe(5);
    });
  });
});
