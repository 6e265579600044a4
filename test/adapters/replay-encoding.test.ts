/**
 * Replays of responses that something reshaped on their way out: Fastify onSend hooks (an
 * envelope, @fastify/compress) and an Express `compression()` mounted after withLock. A review
 * found Fastify's replay run through the onSend hooks a second time (an envelope around the
 * envelope) and a compressed first answer replayed as raw gzip without Content-Encoding. The
 * stored body is the representation (content codings undone); Fastify writes a replay as stored,
 * past its onSend hooks.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { brotliCompressSync, deflateRawSync, deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import compress from '@fastify/compress';
import compression from 'compression';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { withLock as expressWithLock } from '../../src/adapters/express/with-lock.js';
import { withLock as fastifyWithLock } from '../../src/adapters/fastify/with-lock.js';
import { decodedBody } from '../../src/adapters/http/content-coding.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { uniqueId } from '../helpers/stores.js';
import { listen, send, type TestServer } from './support/http.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serveFastify(app: FastifyInstance): Promise<number> {
  await app.ready();
  const server = await listen((req, res) => app.routing(req, res));
  servers.push(server);
  return server.port;
}

async function serveExpress(app: express.Express): Promise<number> {
  const server = await listen(app);
  servers.push(server);
  return server.port;
}

const ORDER = { id: 42, note: 'x'.repeat(2_000) }; // worth compressing

describe.each(['preHandler', 'decorator'] as const)('Fastify replay (%s form)', (form) => {
  function route(app: FastifyInstance, runs: { count: number }): void {
    const store = new MemoryStore();
    const handler = async () => {
      runs.count++;
      return ORDER;
    };
    if (form === 'decorator') app.post('/orders', fastifyWithLock({ store, replay: {} }, handler));
    else app.post('/orders', { preHandler: fastifyWithLock({ store, replay: {} }) }, handler);
  }

  it('is the first answer as the onSend hooks left it, not run through them again', async () => {
    const app = Fastify();
    app.addHook('onSend', async (_request, reply, payload) => {
      if (typeof payload !== 'string') throw new Error(`this hook wraps strings only; got ${typeof payload}`);
      reply.header('content-type', 'application/json; charset=utf-8');
      return `{"envelope":${payload}}`;
    });
    const runs = { count: 0 };
    route(app, runs);
    const port = await serveFastify(app);
    const key = uniqueId('envelope');
    const first = await send(port, { path: '/orders', headers: { 'Idempotency-Key': key }, body: {} });
    const retry = await send(port, { path: '/orders', headers: { 'Idempotency-Key': key }, body: {} });
    expect(runs.count).toBe(1);
    expect(first.status).toBe(200);
    expect(first.json()).toEqual({ envelope: ORDER });
    expect(retry.status).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body.equals(first.body)).toBe(true);
    expect(retry.headers['content-type']).toBe(first.headers['content-type']);
    expect(Number(retry.headers['content-length'])).toBe(retry.body.length);
  });

  it('stores a compressed answer decoded: a retry that accepts no gzip reads it', async () => {
    const app = Fastify();
    await app.register(compress, { global: true, threshold: 0 });
    app.addHook('onRequest', async (_request, reply) => void reply.header('access-control-allow-origin', '*'));
    const runs = { count: 0 };
    route(app, runs);
    const port = await serveFastify(app);
    const key = uniqueId('gzip');
    const first = await send(port, { path: '/orders', headers: { 'Idempotency-Key': key, 'Accept-Encoding': 'gzip' }, body: {} });
    expect(first.headers['content-encoding']).toBe('gzip');
    const retry = await send(port, { path: '/orders', headers: { 'Idempotency-Key': key, 'Accept-Encoding': 'identity' }, body: {} });
    expect(runs.count).toBe(1);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['content-encoding']).toBeUndefined();
    expect(retry.json()).toEqual(ORDER);
    expect(retry.body.equals(gunzipSync(first.body))).toBe(true);
    expect(retry.headers['access-control-allow-origin']).toBe('*'); // set by an onRequest hook: still sent
  });
});

describe('Express replay with compression()', () => {
  it.each([
    ['mounted after withLock (it compresses what withLock captures)', 'after'],
    ['mounted before withLock (withLock captures what it compresses)', 'before'],
  ] as const)('%s: the retry reads the same representation', async (_label, where) => {
    const app = express();
    const store = new MemoryStore();
    const runs = { count: 0 };
    const zip = compression({ threshold: 0 });
    const guard = expressWithLock({ store, replay: {} });
    const handler = (_req: express.Request, res: express.Response) => {
      runs.count++;
      res.json(ORDER);
    };
    if (where === 'after') app.post('/orders', guard, zip, handler);
    else app.post('/orders', zip, guard, handler);
    const port = await serveExpress(app);
    const key = uniqueId('express-gzip');
    const first = await send(port, { path: '/orders', headers: { 'Idempotency-Key': key, 'Accept-Encoding': 'gzip' } });
    expect(first.headers['content-encoding']).toBe('gzip');
    const plain = await send(port, { path: '/orders', headers: { 'Idempotency-Key': key, 'Accept-Encoding': 'identity' } });
    expect(runs.count).toBe(1);
    expect(plain.headers['idempotent-replayed']).toBe('true');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.json()).toEqual(ORDER);
  });
});

describe('decodedBody', () => {
  const text = Buffer.from(JSON.stringify(ORDER));
  // An array too: setHeader('Content-Encoding', [...]) stores one, whatever Node's types say.
  const headers = (encoding?: string | string[]): OutgoingHttpHeaders => (encoding === undefined ? {} : ({ 'content-encoding': encoding } as OutgoingHttpHeaders));

  it('undoes gzip, x-gzip, deflate (zlib or raw), br and stacked codings, in reverse order', async () => {
    expect(await decodedBody(headers(), text, 1e6)).toBe(text);
    expect(await decodedBody(headers('identity'), text, 1e6)).toEqual(text);
    expect(await decodedBody(headers('gzip'), gzipSync(text), 1e6)).toEqual(text);
    expect(await decodedBody(headers('X-GZIP'), gzipSync(text), 1e6)).toEqual(text); // a coding's case does not matter
    expect(await decodedBody(headers('deflate'), deflateSync(text), 1e6)).toEqual(text);
    expect(await decodedBody(headers('deflate'), deflateRawSync(text), 1e6)).toEqual(text);
    expect(await decodedBody(headers('br'), brotliCompressSync(text), 1e6)).toEqual(text);
    expect(await decodedBody(headers('deflate, gzip'), gzipSync(deflateSync(text)), 1e6)).toEqual(text);
    expect(await decodedBody(headers(['deflate', 'br']), brotliCompressSync(deflateSync(text)), 1e6)).toEqual(text);
  });

  it('gives null (not replayable) for an unknown coding, corrupt bytes, or a decoded body over the cap', async () => {
    expect(await decodedBody(headers('zstd'), text, 1e6)).toBeNull();
    expect(await decodedBody(headers('gzip'), text, 1e6)).toBeNull();
    expect(await decodedBody(headers('gzip'), gzipSync(Buffer.alloc(10_000_000)), 1_000)).toBeNull(); // ~10 kB of gzip
    expect(await decodedBody(headers('gzip'), gzipSync(text), text.length)).toEqual(text);
    expect(await decodedBody(headers('gzip'), gzipSync(text), text.length - 1)).toBeNull();
  });

  it('leaves an empty body (a HEAD or 304 answer) as it is', async () => {
    expect(await decodedBody(headers('gzip'), Buffer.alloc(0), 1e6)).toEqual(Buffer.alloc(0));
  });
});
