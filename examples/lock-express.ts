/**
 * Express + withLock: a lock-guard and Idempotency-Key replay.
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/lock-express.ts [--once]
 *
 * Uses Redis when `REDIS_URL` is set, else the in-memory default store. `--once` starts on a free
 * port, sends a few requests, prints them and exits.
 */
import express from 'express';
import { withLock } from '../src/express.js';
import { printTable, serve } from './support/http.js';
import { exampleStore } from './support/store.js';
import { LOCK_PROBE_HEADER, exerciseLocks, slowly } from './lock-probe.js';

const { store, close } = await exampleStore();
const app = express();
app.use(express.json()); // before withLock: the replay fingerprint covers the parsed body

// One order per cart at a time: concurrent checkouts of the same cart get 409 (+ Retry-After); a
// request without a cartId yields no key and gets 400.
app.post('/orders', withLock({ store, key: (req) => (req.body?.cartId ? `cart:${req.body.cartId}` : undefined), ttl: '30s' }), async (req, res) => {
  await slowly(); // the handler's work; the lease is auto-extended meanwhile
  res.status(201).json({ cartId: req.body.cartId, fence: req.lock?.fence });
});

// Payments: the client's Idempotency-Key (scoped per client IP) makes retries safe: one execution,
// retries get the stored response with `Idempotent-Replayed: true`.
let paymentIds = 0;
app.post('/payments', withLock({ store, replay: { ttl: '24h' } }), async (req, res) => {
  await slowly();
  res.status(201).location(`/payments/${++paymentIds}`).json({ id: paymentIds, amount: req.body.amount });
});

await serve(app, async (baseUrl) => printTable(LOCK_PROBE_HEADER, await exerciseLocks(baseUrl)), close);
