/**
 * What a client can put on the wire to step around a limit, on every framework, over raw HTTP
 * (supertest cannot send these): request-targets a router reads as another path (the route
 * table must still count them), and a header sent twice (keys.header() takes the first line).
 * Found by a review: Fastify ran a table-limited route uncounted for each target form below, and
 * keyed `X-Api-Key: K` + `X-Api-Key: junk` as "K, junk", a fresh count per junk value.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { keys } from '../../src/keys/index.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { listen } from './support/http.js';
import { frameworks } from './frameworks.js';

/** Sends `lines` as one raw HTTP/1.1 request and returns the response's status code. */
function rawStatus(port: number, lines: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(reply);
      if (status !== null) {
        resolve(Number(status[1]));
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed without a status line: ${JSON.stringify(reply)}`)));
    socket.write(`${[...lines, 'Host: localhost', 'Content-Length: 0', 'Connection: close'].join('\r\n')}\r\n\r\n`);
  });
}

const TARGETS = ['/%6Cogin', '/logi%6E', '/login#x', 'http://localhost/login', '/LOGIN/', '//login?x=1', '/login;jsessionid=1'];

describe.each(frameworks)('$name', (fw) => {
  it('counts a table-limited route however its request-target is spelled', async () => {
    const store = new MemoryStore();
    const routes = [
      { route: 'POST /login', limit: 1, window: '1m' },
      { route: 'GET /u/:id/edit', limit: 1, window: '1m' },
    ];
    const server = await listen(fw.app([fw.rateLimitRoutes({ store, routes })]));
    try {
      expect(await rawStatus(server.port, ['POST /login HTTP/1.1'])).toBe(200);
      expect(await rawStatus(server.port, ['GET /u/1/edit HTTP/1.1'])).toBe(200);
      const statuses = new Map<string, number>();
      for (const target of TARGETS) statuses.set(target, await rawStatus(server.port, [`POST ${target} HTTP/1.1`]));
      // Fastify gives a :param an empty value: /u//edit runs /u/:id/edit.
      statuses.set('/u//edit', await rawStatus(server.port, ['GET /u//edit HTTP/1.1']));
      // Refused by the table (429) or by the framework (400, 404): never run uncounted (200).
      for (const [target, status] of statuses) expect(status, target).not.toBe(200);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('keys a header sent twice by its first line', async () => {
    const store = new MemoryStore();
    const server = await listen(fw.app([fw.rateLimit({ store, limit: 1, window: '1m', key: keys.header('x-api-key') })]));
    try {
      expect(await rawStatus(server.port, ['GET /any HTTP/1.1', 'X-Api-Key: K'])).toBe(200);
      expect(await rawStatus(server.port, ['GET /any HTTP/1.1', 'X-Api-Key: K'])).toBe(429);
      expect(await rawStatus(server.port, ['GET /any HTTP/1.1', 'X-Api-Key: K', 'X-Api-Key: junk0'])).toBe(429);
      expect(await rawStatus(server.port, ['GET /any HTTP/1.1', 'X-Api-Key: L', 'X-Api-Key: K'])).toBe(200);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
