/**
 * The lock examples run as users run them (`--once`), on the in-memory store and on the shared
 * Redis, and the demo's lock section prints what it promises. A child that overstays is killed
 * by its PID.
 */
import { describe, expect, it } from 'vitest';
import { redisUrl } from '../helpers/redis.js';
import { runExample } from '../helpers/run-example.js';

/** `[request, status, Idempotent-Replayed, Retry-After, body]` rows of a printed table. */
function rows(output: string): string[][] {
  return output
    .split('\n')
    .filter((line) => /^(POST|#\d|retry) /.test(line))
    .map((line) => line.trim().split(/\s{2,}/));
}

describe.each(['lock-express', 'lock-koa'])('examples/%s.ts --once', (example) => {
  it.each([
    ['the in-memory store', false],
    ['Redis', true],
  ])('on %s: one order per cart, payments replayed, 422 and 400 (no Idempotency-Key, no cartId)', async (_what, onRedis) => {
    const env = { REDIS_URL: onRedis ? redisUrl() : '' }; // '' = the in-memory store, even if REDIS_URL is set
    const result = await runExample(`examples/${example}.ts`, ['--once'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const table = rows(result.stdout);
    expect(table.slice(0, 3).map((row) => row[1]).sort()).toEqual(['201', '409', '409']);
    expect(table.slice(3).map((row) => row.slice(0, 3))).toEqual([
      ['POST /payments (key A)', '201', '-'],
      ['POST /payments retry (key A)', '201', 'true'],
      ['POST /payments other body (key A)', '422', '-'],
      ['POST /payments (no key)', '400', '-'],
      ['POST /orders (no cartId)', '400', '-'],
    ]);
    expect(table[4]![4]).toBe(table[3]![4]); // the replayed body is the original one
  });
});

it('the demo’s lock section: 5 concurrent duplicates → one 201 and four 409, then a replayed 201', async () => {
  const result = await runExample('examples/lock-demo-section.ts');
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const table = rows(result.stdout);
  expect(table.slice(0, 5).map((row) => row[1]).sort()).toEqual(['201', '409', '409', '409', '409']);
  expect(table[5]!.slice(0, 3)).toEqual(['retry', '201', 'true']);
  expect(result.stdout).toContain('charged 1 time(s)');
});
