/**
 * GCRA limits and the penalty box over HTTP, on every framework of `frameworks` (MemoryStore on a
 * virtual clock): `algorithm` and `block` on rateLimit, per route rule and for a whole table; a
 * closed box answers 429 with Retry-After and the draft's `abnormal-usage-detected` problem.
 */
import { parseList, type Item } from 'structured-headers';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { stillStore } from './support/still-store.js';
import { frameworks } from './frameworks.js';

function rateLimitParams(value: unknown): Record<string, unknown> {
  const [[, params]] = parseList(String(value)) as [Item];
  return Object.fromEntries(params);
}

describe.each(frameworks)('GCRA and the penalty box on $name', (fw) => {
  it("algorithm: 'gcra' — a burst passes, then one per window / limit; t is until the next unit", async () => {
    const { store, clock } = stillStore();
    const app = fw.app([fw.rateLimit({ store, limit: 2, window: '2s', algorithm: 'gcra' })]);
    expect((await request(app).get('/a')).status).toBe(200);
    const second = await request(app).get('/a');
    expect(second.status).toBe(200);
    expect(rateLimitParams(second.headers['ratelimit'])).toEqual({ r: 0, t: 1 });
    const refused = await request(app).get('/a');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    clock.now += 1_000;
    expect((await request(app).get('/a')).status).toBe(200);
  });

  it("block: a client that keeps exceeding is refused for 'for' with an abnormal-usage-detected problem", async () => {
    const { store, clock } = stillStore();
    const decisions: unknown[] = [];
    const app = fw.app([fw.rateLimit({ store, limit: 1, window: '1m', block: { after: 2, for: '5m' }, onDecision: (_req: unknown, d: { reason: string }) => decisions.push(d.reason) })]);
    expect((await request(app).get('/a')).status).toBe(200);
    const limited = await request(app).get('/a');
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.text)).toMatchObject({ type: 'https://iana.org/assignments/http-problem-types#quota-exceeded' });
    const blocked = await request(app).get('/a');
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toBe('300');
    expect(blocked.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(blocked.text)).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#abnormal-usage-detected',
      title: 'Abnormal Usage Detected',
      status: 429,
      'violated-policies': ['1-in-1m'],
    });
    clock.now += 120_000; // the 1-minute window has passed, the box has not
    expect((await request(app).get('/a')).headers['retry-after']).toBe('180');
    expect(decisions).toEqual(['allowed', 'limited', 'blocked', 'blocked']);
  });

  it('route tables: algorithm and block per rule or for the whole table; block: false opts a rule out', async () => {
    const { store } = stillStore();
    const app = fw.app([
      fw.rateLimitRoutes({
        store,
        block: { for: '1m' },
        routes: [
          { route: '/smooth', limit: 10, window: '1s', algorithm: 'gcra', burst: 1, block: false },
          { route: '/strict', limit: 1, window: '1h' },
        ],
      }),
    ]);
    expect((await request(app).get('/smooth')).status).toBe(200);
    const spaced = await request(app).get('/smooth');
    expect(spaced.status).toBe(429);
    expect(spaced.headers['retry-after']).toBe('1'); // 100 ms, rounded up
    expect(JSON.parse(spaced.text).type).toMatch(/#quota-exceeded$/);
    expect((await request(app).get('/strict')).status).toBe(200);
    const boxed = await request(app).get('/strict'); // after 1 (the default): the first refusal closes it
    expect(boxed.status).toBe(429);
    expect(boxed.headers['retry-after']).toBe('60');
    expect(JSON.parse(boxed.text).type).toMatch(/#abnormal-usage-detected$/);
  });
});
