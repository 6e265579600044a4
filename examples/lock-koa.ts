/**
 * Koa + withLock (the Koa twin of lock-express.ts): a lock-guard and Idempotency-Key replay.
 *
 *   node --import tsx --import ./examples/support/register-lua-text.mjs examples/lock-koa.ts [--once]
 *
 * Uses Redis when `REDIS_URL` is set, else the in-memory default store. `--once` starts on a free
 * port, sends a few requests, prints them and exits.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import { withLock } from '../src/koa.js';
import { printTable, serve } from './support/http.js';
import { exampleStore } from './support/store.js';
import { LOCK_PROBE_HEADER, exerciseLocks, slowly } from './lock-probe.js';

const { store, close } = await exampleStore();
const app = new Koa();
app.use(bodyParser()); // before withLock: the replay fingerprint covers the parsed body
const router = new Router();

// One order per cart at a time: concurrent checkouts of the same cart get 409 (+ Retry-After); a
// request without a cartId yields no key and gets 400.
const cartOf = (ctx: Koa.Context): string | undefined => (ctx.request.body as { cartId?: string } | undefined)?.cartId;
router.post('/orders', withLock({ store, key: (ctx) => (cartOf(ctx) ? `cart:${cartOf(ctx)}` : undefined), ttl: '30s' }), async (ctx) => {
  await slowly(); // the handler's work; the lease is auto-extended meanwhile
  ctx.status = 201;
  ctx.body = { cartId: (ctx.request.body as { cartId: string }).cartId, fence: ctx.state.lock?.fence };
});

// Payments: the client's Idempotency-Key (scoped per client IP) makes retries safe: one execution,
// retries get the stored response with `Idempotent-Replayed: true`.
let paymentIds = 0;
router.post('/payments', withLock({ store, replay: { ttl: '24h' } }), async (ctx) => {
  await slowly();
  ctx.status = 201;
  ctx.set('Location', `/payments/${++paymentIds}`);
  ctx.body = { id: paymentIds, amount: (ctx.request.body as { amount: number }).amount };
});

app.use(router.routes());
await serve(app.callback(), async (baseUrl) => printTable(LOCK_PROBE_HEADER, await exerciseLocks(baseUrl)), close);
