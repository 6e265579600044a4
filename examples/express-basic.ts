/**
 * Express + ratelock, the common cases in one app:
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/express-basic.ts [--once]
 *
 * Uses Redis when `REDIS_URL` is set (e.g. `REDIS_URL=redis://127.0.0.1:6379`), else the in-memory
 * default store. `--once` starts on a free port, sends a few requests, prints them and exits.
 * (The second `--import` lets tsx load the Lua scripts from source; a built package needs none.)
 */
import express from 'express';
import { keys, rateLimit } from '../src/express.js';
import { PROBE_HEADER, printTable, probe, serve } from './support/http.js';
import { exampleStore } from './support/store.js';

const { store, close } = await exampleStore();
const app = express();
app.set('trust proxy', false); // behind one proxy: 1 (never `true`: clients could pick their own IP)

// Every route: 100 requests per minute per client IP. Limiters sharing a store keep separate counts:
// each log is named after its quota and window ('100-in-1m', '3-in-15m', ...).
app.use(rateLimit({ store, limit: 100, window: '1m' }));

// Login: 3 attempts per 15 minutes, per API key if one is sent, else per IP; only failures count.
app.post(
  '/login',
  rateLimit({ store, limit: 3, window: '15m', key: [keys.header('x-api-key'), keys.ip()], refund: 'success' }),
  (req, res) => void res.status(req.get('x-password') === 'secret' ? 200 : 401).send('login'),
);

// Search: 2 per 10 seconds and 50 per hour, checked in one atomic call.
app.get(
  '/search',
  rateLimit({ store, limits: [{ limit: 2, window: '10s' }, { limit: 50, window: '1h', name: 'hourly' }] }),
  (req, res) => void res.json({ results: [], rateLimit: req.rateLimit }),
);

app.get('/', (_req, res) => void res.send('hello'));

await serve(
  app,
  async (baseUrl) => {
    const rows: string[][] = [];
    rows.push(await probe(baseUrl, 'GET', '/'));
    for (let i = 0; i < 4; i++) rows.push(await probe(baseUrl, 'POST', '/login', { 'x-password': 'wrong' }));
    for (let i = 0; i < 3; i++) rows.push(await probe(baseUrl, 'GET', '/search'));
    printTable(PROBE_HEADER, rows);
  },
  close,
);
