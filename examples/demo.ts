/**
 * `npm run demo`: ratelock in a few seconds, no Redis needed. An Express app on the in-memory
 * default store is started on a free port and driven by a scripted client, which prints each
 * response as the 200s turn into 429s; then concurrent duplicate requests meet the lock-guard and
 * Idempotency-Key replay. Exits by itself.
 *
 * In an app you would write `import { rateLimit } from 'ratelock/express'`; the demo imports the
 * entry point's source so it runs from a checkout without a build or a Redis.
 */
import express from 'express';
import { pathToFileURL } from 'node:url';
import { rateLimit } from '../src/express.js';
import { close, listen, printTable } from './support/http.js';
import { lockSection } from './lock-demo-section.js';

const LIMIT = 5;
const WINDOW = '10s';
const REQUESTS = 8;

/** Section 1: one client sends 8 requests to a route limited to 5 per 10 s. */
export async function rateLimitSection(): Promise<void> {
  const app = express();
  app.get('/hello', rateLimit({ limit: LIMIT, window: WINDOW }), (_req, res) => void res.send('hello'));
  const { server, baseUrl } = await listen(app);
  try {
    console.log(`\n== Rate limit: GET /hello allows ${LIMIT} requests per ${WINDOW} per client IP ==\n`);
    const rows: string[][] = [];
    for (let i = 1; i <= REQUESTS; i++) {
      const response = await fetch(`${baseUrl}/hello`);
      await response.arrayBuffer();
      rows.push([String(i), String(response.status), response.headers.get('ratelimit') ?? '-', response.headers.get('retry-after') ?? '-']);
    }
    printTable(['#', 'status', 'RateLimit', 'Retry-After'], rows);
    console.log(`\nRequests 1-${LIMIT} pass (r = requests left); then 429 with Retry-After (seconds until one is allowed again).`);
  } finally {
    await close(server);
  }
}

/** The demo's sections after the rate limiter's: the lock-guard section plugs in here. */
export interface DemoSections {
  /** Concurrent duplicate requests to a locked route: one 200, the others 409. */
  lockSection?: () => Promise<void>;
}

export async function main(sections: DemoSections = {}): Promise<void> {
  await rateLimitSection();
  await sections.lockSection?.();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main({ lockSection });
}
