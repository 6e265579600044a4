/**
 * Response capture edge cases: headers passed to `res.writeHead()` (which Node does not keep in
 * `getHeaders()`), a stream body that fails mid-way on Koa, Fastify and Hono (the record is
 * aborted so a retry runs), and a body over the cap never buffered past it.
 */
import { Readable } from 'node:stream';
import express from 'express';
import Koa from 'koa';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { withLock as expressWithLock } from '../../src/adapters/express/with-lock.js';
import { withLock as koaWithLock } from '../../src/adapters/koa/with-lock.js';
import { withLock as fastifyWithLock } from '../../src/adapters/fastify/with-lock.js';
import { withLock as honoWithLock } from '../../src/adapters/hono/with-lock.js';
import { BoundedBody } from '../../src/adapters/http/idempotency-capture.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { uniqueId } from '../helpers/stores.js';
import { listen, send, type TestServer } from './support/http.js';

const store = new MemoryStore();
const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  store.close();
});

describe('Express capture', () => {
  it('stores headers given to res.writeHead (object form), filtered by the allowlist', async () => {
    let runs = 0;
    const app = express();
    app.post('/', expressWithLock({ store, replay: {} }), (_req, res) => {
      runs++;
      res.writeHead(201, { 'Content-Type': 'application/json', Location: '/things/7', 'Set-Cookie': 'sid=1' });
      res.write('{"id":');
      res.end(Buffer.from('7}'));
    });
    const server = await listen(app as never);
    servers.push(server);
    const key = uniqueId('write-head');
    const first = await send(server.port, { headers: { 'Idempotency-Key': key } });
    const retry = await send(server.port, { headers: { 'Idempotency-Key': key } });
    expect(runs).toBe(1);
    expect(first.text).toBe('{"id":7}');
    expect(retry.status).toBe(201);
    expect(retry.text).toBe('{"id":7}');
    expect(retry.headers['content-type']).toBe('application/json');
    expect(retry.headers.location).toBe('/things/7');
    expect(retry.headers['set-cookie']).toBeUndefined();
  });
});

describe('Koa capture', () => {
  it('aborts the record when a stream body fails mid-way, so the retry runs again', async () => {
    let runs = 0;
    const app = new Koa();
    app.silent = true;
    app.use(koaWithLock({ store, replay: {} }));
    app.use((ctx) => {
      runs++;
      ctx.type = 'text/plain';
      ctx.body =
        runs === 1
          ? new Readable({
              read() {
                this.push('partial ');
                this.destroy(new Error('upstream failed'));
              },
            })
          : 'complete';
    });
    const server = await listen(app.callback());
    servers.push(server);
    const key = uniqueId('stream-fails');
    await send(server.port, { headers: { 'Idempotency-Key': key } }).catch(() => undefined); // cut off mid-body
    await new Promise((resolve) => setTimeout(resolve, 20));
    const retry = await send(server.port, { headers: { 'Idempotency-Key': key } });
    expect(retry.status).toBe(200);
    expect(retry.text).toBe('complete');
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(runs).toBe(2);
  });
});

/** Sends the same Idempotency-Key twice, the first response cut off mid-body; returns the retry. */
async function retryAfterCutOff(port: number, key: string) {
  await send(port, { headers: { 'Idempotency-Key': key } }).catch(() => undefined); // cut off mid-body
  await new Promise((resolve) => setTimeout(resolve, 20));
  return send(port, { headers: { 'Idempotency-Key': key } });
}

describe('Fastify capture', () => {
  it('aborts the record when a stream payload fails mid-way, so the retry runs again', async () => {
    let runs = 0;
    const app = Fastify();
    app.post('/', { preHandler: fastifyWithLock({ store, replay: {} }) }, async (_request, reply) => {
      runs++;
      reply.type('text/plain');
      if (runs > 1) return 'complete';
      return reply.send(
        new Readable({
          read() {
            this.push('partial ');
            this.destroy(new Error('upstream failed'));
          },
        }),
      );
    });
    await app.ready();
    const server = await listen((req, res) => app.routing(req, res));
    servers.push(server);
    const retry = await retryAfterCutOff(server.port, uniqueId('fastify-stream-fails'));
    expect(retry.status).toBe(200);
    expect(retry.text).toBe('complete');
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(runs).toBe(2);
  });
});

describe('Hono capture', () => {
  it('aborts the record when a web stream body fails mid-way, so the retry runs again', async () => {
    // @hono/node-server logs the failed stream; that is expected here.
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    let runs = 0;
    const app = new Hono();
    app.post('/', honoWithLock({ store, replay: {} }), (c) => {
      runs++;
      if (runs > 1) return c.text('complete');
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(Buffer.from('partial '));
          controller.error(new Error('upstream failed'));
        },
      });
      return c.body(body, 200, { 'content-type': 'text/plain' });
    });
    const server = await listen(getRequestListener(app.fetch));
    servers.push(server);
    const retry = await retryAfterCutOff(server.port, uniqueId('hono-stream-fails'));
    expect(retry.status).toBe(200);
    expect(retry.text).toBe('complete');
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(runs).toBe(2);
    logged.mockRestore();
  });
});

describe('BoundedBody', () => {
  it('keeps chunks up to the cap, then drops everything and answers null', () => {
    const body = new BoundedBody(10);
    body.add('hello');
    body.add(Buffer.from(' wor'));
    body.add(new Uint8Array([0x6c]));
    expect(body.result()?.toString()).toBe('hello worl');
    body.add('d');
    expect(body.result()).toBeNull();
    body.add('more');
    expect(body.result()).toBeNull();
  });

  it('decodes string chunks with their encoding', () => {
    const body = new BoundedBody(100);
    body.add('68656c6c6f', 'hex');
    body.add('IQ==', 'base64');
    expect(body.result()?.toString()).toBe('hello!');
  });
});
