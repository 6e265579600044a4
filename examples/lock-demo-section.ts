/**
 * The demo's lock-guard section (`examples/demo.ts` calls `lockSection()`): an Express app on the
 * in-memory default store; 5 concurrent duplicate POSTs with one Idempotency-Key → one 201, four
 * 409; then a retry → the stored 201 again, with `Idempotent-Replayed: true`.
 *
 * Imports the entry point's source (like demo.ts), so it runs from a checkout without a build or a
 * Redis; in an app: `import { withLock } from 'ratelock/express'`.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { withLock } from '../src/express.js';
import { close, listen, printTable } from './support/http.js';
import { LOCK_PROBE_HEADER, post, slowly } from './lock-probe.js';

const DUPLICATES = 5;

export async function lockSection(): Promise<void> {
  const app = express();
  app.use(express.json());
  let charges = 0;
  app.post('/payments', withLock({ replay: { ttl: '24h' } }), async (req, res) => {
    charges++;
    await slowly(1_000); // charging the card takes a while: the duplicates arrive meanwhile
    res.status(201).json({ paymentId: `pay_${charges}`, amount: req.body.amount });
  });
  const { server, baseUrl } = await listen(app);
  try {
    console.log(`\n== Lock-guard + Idempotency-Key: ${DUPLICATES} concurrent duplicates of POST /payments, then a retry ==\n`);
    const key = randomUUID();
    const headers = { 'Idempotency-Key': key };
    const rows = await Promise.all(
      Array.from({ length: DUPLICATES }, (_, i) => post(baseUrl, `#${i + 1} concurrent`, '/payments', { amount: 10 }, headers)),
    );
    rows.push(await post(baseUrl, 'retry', '/payments', { amount: 10 }, headers));
    printTable(LOCK_PROBE_HEADER, rows);
    console.log(`\nThe card was charged ${charges} time(s). While the first request ran, its duplicates got 409 (problem+json,`);
    console.log('Retry-After); the retry after it finished got the stored 201 back, byte for byte, marked Idempotent-Replayed.');
  } finally {
    await close(server);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await lockSection();
}
