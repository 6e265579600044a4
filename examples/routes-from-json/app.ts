/**
 * Per-route limits declared as data: the table is read from routes.json next to this file and
 * mounted once, before any router (matching does not depend on it).
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/routes-from-json/app.ts [--once]
 *
 * Every rule that matches a request applies; their limits are decided in ONE store call, all or
 * nothing (`POST /api/orders` counts against both `api` and `api-write`). A bad table fails at
 * startup with the rule index and field, e.g. `routes[1].limit must be an integer ...`.
 */
import express from 'express';
import { readFile } from 'node:fs/promises';
import { rateLimitRoutes } from '../../src/express.js';
import { PROBE_HEADER, printTable, probe, serve } from '../support/http.js';
import { exampleStore } from '../support/store.js';

const { routes } = JSON.parse(await readFile(new URL('./routes.json', import.meta.url), 'utf8')) as { routes: unknown[] };
const { store, close } = await exampleStore();

const app = express();
app.use(
  rateLimitRoutes({
    store,
    // What the 'user' key spec means; here a header stands in for the app's session lookup.
    user: (req) => req.get('x-user'),
    routes: routes as Parameters<typeof rateLimitRoutes>[0]['routes'],
  }),
);
app.post('/login', (_req, res) => void res.send('login'));
app.get('/search', (req, res) => void res.json({ decidedBy: req.rateLimit?.policy.name }));
app.all('/api/*path', (_req, res) => void res.json({ ok: true }));

await serve(
  app,
  async (baseUrl) => {
    const rows: string[][] = [];
    for (let i = 0; i < 3; i++) rows.push(await probe(baseUrl, 'GET', '/search', { 'x-user': 'alice' }));
    for (let i = 0; i < 3; i++) rows.push(await probe(baseUrl, 'POST', '/api/orders', { 'x-api-key': 'key-1' }));
    rows.push(await probe(baseUrl, 'GET', '/api/orders', { 'x-api-key': 'key-1' }));
    rows.push(await probe(baseUrl, 'GET', '/unlimited'));
    printTable(PROBE_HEADER, rows);
  },
  close,
);
