/**
 * Fastify + ratelock, the common cases in one app (the Fastify twin of express-basic.ts):
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/fastify-basic.ts [--once]
 *
 * Uses Redis when `REDIS_URL` is set, else the in-memory default store. `--once` starts on a free
 * port, sends a few requests, prints them and exits. The plugin's limits apply to every route
 * registered after it; a route's `config.rateLimit` replaces them on that route (counted per route).
 */
import Fastify from 'fastify';
import { keys, rateLimit } from '../src/fastify.js';
import { PROBE_HEADER, printTable, probe, serve } from './support/http.js';
import { exampleStore } from './support/store.js';

const { store, close } = await exampleStore();
const app = Fastify(); // behind a proxy: Fastify({ trustProxy: '<its address>' }) (never `true`: clients could pick their own IP)

// Every route: 100 requests per minute per client IP, one quota across routes.
await app.register(rateLimit, { store, limit: 100, window: '1m' });

// Login: 3 attempts per 15 minutes, per API key if one is sent, else per IP; only failures count.
app.post(
  '/login',
  { config: { rateLimit: { limit: 3, window: '15m', key: [keys.header('x-api-key'), keys.ip()], refund: 'success' } } },
  async (request, reply) => reply.code(request.headers['x-password'] === 'secret' ? 200 : 401).send('login'),
);

// Search: 2 per 10 seconds and 50 per hour, checked in one atomic call.
app.get(
  '/search',
  { config: { rateLimit: { limits: [{ limit: 2, window: '10s' }, { limit: 50, window: '1h', name: 'hourly' }] } } },
  async (request) => ({ results: [], rateLimit: request.rateLimit }),
);

app.get('/', async () => 'hello');

// In an app of your own: await app.listen({ port: 3000 }). Here the examples' helper serves it.
await app.ready();
await serve(
  (req, res) => app.routing(req, res),
  async (baseUrl) => {
    const rows: string[][] = [];
    rows.push(await probe(baseUrl, 'GET', '/'));
    for (let i = 0; i < 4; i++) rows.push(await probe(baseUrl, 'POST', '/login', { 'x-password': 'wrong' }));
    for (let i = 0; i < 3; i++) rows.push(await probe(baseUrl, 'GET', '/search'));
    printTable(PROBE_HEADER, rows);
  },
  async () => {
    await app.close();
    await close();
  },
);
