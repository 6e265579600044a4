/**
 * The `refund` option decides on KNOWN outcomes only, on Express 5/4, Koa 3/2, Fastify and Hono: a client that
 * hangs up while the handler runs must not get its cost back while the handler goes on and
 * succeeds (otherwise `refund: 'failure'` is bypassed by closing sockets). The status the handler
 * produced decides, also after the client left; errors thrown to the framework are failures.
 */
import { request as httpRequest, type RequestListener } from 'node:http';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../src/stores/memory.js';
import { frameworks } from './frameworks.js';
import { listen as listenOn, type TestServer } from './support/http.js';

const fixedKey = () => 'k';
const servers: TestServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Serves `app` until the end of the test; its port. */
async function listen(app: RequestListener): Promise<number> {
  const server = await listenOn(app);
  servers.push(server);
  return server.port;
}

/**
 * Sends GET `path` and destroys the socket, before any response: once `started` resolves (the
 * handler is running), or after `afterMs` when the request never reaches a handler (refused).
 */
function hangUp(port: number, path: string, started: Promise<void>, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.end();
    const destroy = (): void => {
      req.destroy();
      resolve();
    };
    started.then(destroy, destroy);
    setTimeout(destroy, afterMs);
  });
}

/** A hook for `onSlowStart` and the promise of the next handler start. */
function handlerStarts(): { onSlowStart: () => void; next: () => Promise<void> } {
  let signal: () => void = () => undefined;
  return {
    onSlowStart: () => signal(),
    next: () => new Promise<void>((resolve) => (signal = resolve)),
  };
}

describe.each(frameworks)('refund on $name', (fw) => {
  it("'failure' keeps the cost of requests whose client hung up while the handler went on to succeed", async () => {
    const store = new MemoryStore();
    const succeeded: number[] = [];
    const starts = handlerStarts();
    const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: fixedKey, refund: 'failure' })], {
      onSlowStart: starts.onSlowStart,
      onSlowDone: (status) => void succeeded.push(status),
    });
    const port = await listen(app);
    for (let i = 0; i < 6; i++) {
      // Hang up as soon as the handler runs (a refused request is answered 429 at once: no hang-up needed).
      await hangUp(port, '/slow/100/200', starts.next(), 1_000);
      // Let the handler (if it runs) finish its work and the refund (if any) land.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Only the 2 requests within the quota ever ran: the 4 others were refused with 429.
    expect(succeeded).toEqual([200, 200]);
    expect((await request(app).get('/hello')).status).toBe(429);
    store.close();
  });

  it.each([
    ['failure', 500],
    ['success', 200],
  ] as const)("'%s' gives back the cost when the handler answers %i after the client hung up", async (mode, status) => {
    const store = new MemoryStore();
    const done: number[] = [];
    const starts = handlerStarts();
    const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', key: fixedKey, refund: mode })], {
      onSlowStart: starts.onSlowStart,
      onSlowDone: (produced) => void done.push(produced),
    });
    const port = await listen(app);
    await hangUp(port, `/slow/80/${status}`, starts.next(), 5_000);
    await vi.waitFor(() => expect(done).toEqual([status]));
    // The refund lands right after the handler's response.
    await vi.waitFor(async () => expect((await request(app).get('/hello')).status).toBe(200));
    store.close();
  });

  it('counts an error thrown to the framework (Express next(err), Koa ctx.throw, a throw in Fastify and Hono) as a failure', async () => {
    const store = new MemoryStore();
    const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', key: fixedKey, refund: 'failure' })]);
    for (let i = 0; i < 3; i++) expect((await request(app).get('/throw/400')).status).toBe(500);
    // Every failed request was given back: the quota is whole.
    expect((await request(app).get('/status/200')).status).toBe(200);
    expect((await request(app).get('/status/200')).status).toBe(429);
    store.close();
  });
});
