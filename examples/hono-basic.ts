/**
 * Hono (on Node with @hono/node-server) + ratelock, the common cases in one app (the Hono twin of
 * express-basic.ts):
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/hono-basic.ts [--once]
 *
 * Uses Redis when `REDIS_URL` is set, else the in-memory default store. `--once` starts on a free
 * port, sends a few requests, prints them and exits. Clients are keyed by the socket address; no
 * proxy header is trusted unless `trustProxy({ hops })` says so.
 */
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { keys, rateLimit, type RateLimitEnv } from '../src/hono.js';
import { PROBE_HEADER, printTable, probe, serve } from './support/http.js';
import { exampleStore } from './support/store.js';

const { store, close } = await exampleStore();
const app = new Hono<RateLimitEnv>(); // c.get('rateLimit') is typed
// Behind one reverse proxy: app.use(trustProxy({ hops: 1 })) (reads X-Forwarded-For, and only that).

// Every route: 100 requests per minute per client IP. Limiters sharing a store keep separate counts:
// each log is named after its quota and window ('100-in-1m', '3-in-15m', ...).
app.use(rateLimit({ store, limit: 100, window: '1m' }));

// Login: 3 attempts per 15 minutes, per API key if one is sent, else per IP; only failures count.
app.post(
  '/login',
  rateLimit({ store, limit: 3, window: '15m', key: [keys.header('x-api-key'), keys.ip()], refund: 'success' }),
  (c) => c.text('login', c.req.header('x-password') === 'secret' ? 200 : 401),
);

// Search: 2 per 10 seconds and 50 per hour, checked in one atomic call.
app.get('/search', rateLimit({ store, limits: [{ limit: 2, window: '10s' }, { limit: 50, window: '1h', name: 'hourly' }] }), (c) =>
  c.json({ results: [], rateLimit: c.get('rateLimit') }),
);

app.get('/', (c) => c.text('hello'));

// In an app of your own: serve({ fetch: app.fetch, port: 3000 }) from '@hono/node-server'.
await serve(
  getRequestListener(app.fetch),
  async (baseUrl) => {
    const rows: string[][] = [];
    rows.push(await probe(baseUrl, 'GET', '/'));
    for (let i = 0; i < 4; i++) rows.push(await probe(baseUrl, 'POST', '/login', { 'x-password': 'wrong' }));
    for (let i = 0; i < 3; i++) rows.push(await probe(baseUrl, 'GET', '/search'));
    printTable(PROBE_HEADER, rows);
  },
  close,
);
