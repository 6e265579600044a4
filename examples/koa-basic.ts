/**
 * Koa + ratelock, the common cases in one app (the Koa twin of express-basic.ts):
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/koa-basic.ts [--once]
 *
 * Uses Redis when `REDIS_URL` is set, else the in-memory default store. `--once` starts on a free
 * port, sends a few requests, prints them and exits. A limited request is answered by the
 * middleware itself (status, headers, body set and returned, never thrown).
 */
import Router from '@koa/router';
import Koa from 'koa';
import { keys, rateLimit } from '../src/koa.js';
import { PROBE_HEADER, printTable, probe, serve } from './support/http.js';
import { exampleStore } from './support/store.js';

const { store, close } = await exampleStore();
const app = new Koa();
app.proxy = false; // behind one proxy: app.proxy = true and app.maxIpsCount = 1

// Every route: 100 requests per minute per client IP. Limiters sharing a store keep separate counts:
// each log is named after its quota and window ('100-in-1m', '3-in-15m', ...).
app.use(rateLimit({ store, limit: 100, window: '1m' }));

const router = new Router();
// Login: 3 attempts per 15 minutes, per API key if one is sent, else per IP; only failures count.
router.post(
  '/login',
  rateLimit({ store, limit: 3, window: '15m', key: [keys.header('x-api-key'), keys.ip()], refund: 'success' }),
  (ctx) => {
    ctx.status = ctx.get('x-password') === 'secret' ? 200 : 401;
    ctx.body = 'login';
  },
);
// Search: 2 per 10 seconds and 50 per hour, checked in one atomic call.
router.get(
  '/search',
  rateLimit({ store, limits: [{ limit: 2, window: '10s' }, { limit: 50, window: '1h', name: 'hourly' }] }),
  (ctx) => void (ctx.body = { results: [], rateLimit: ctx.state.rateLimit }),
);
router.get('/', (ctx) => void (ctx.body = 'hello'));
app.use(router.routes());

await serve(
  app.callback(),
  async (baseUrl) => {
    const rows: string[][] = [];
    rows.push(await probe(baseUrl, 'GET', '/'));
    for (let i = 0; i < 4; i++) rows.push(await probe(baseUrl, 'POST', '/login', { 'x-password': 'wrong' }));
    for (let i = 0; i < 3; i++) rows.push(await probe(baseUrl, 'GET', '/search'));
    printTable(PROBE_HEADER, rows);
  },
  close,
);
