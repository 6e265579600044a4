/**
 * The draft-10 RateLimit headers over HTTP, on every framework of `frameworks`, read back with the
 * independent parser `structured-headers`: the default mode, `t` counting down to the oldest
 * entry's exit (where draft-8's `t` names the full reset), Retry-After never earlier than `t`, the
 * quota-exceeded problem body, opt-in `pk` and `qu`. MemoryStores on a virtual clock.
 */
import { parseList, type Item } from 'structured-headers';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { stillStore } from './support/still-store.js';
import { frameworks } from './frameworks.js';

/** The one item of a `RateLimit` field: its policy name and parameters. */
function rateLimitItem(value: unknown): { name: unknown; params: Record<string, unknown> } {
  expect(value).toBeTypeOf('string');
  const list = parseList(value as string);
  expect(list).toHaveLength(1);
  const [name, params] = list[0] as Item;
  return { name, params: Object.fromEntries(params) };
}

const clientKey = (req: { headers: Record<string, string | string[] | undefined> } | { req: { header(name: string): string | undefined } }) =>
  'headers' in req ? String(req.headers['x-client']) : String(req.req.header('x-client'));

describe.each(frameworks)('draft-10 headers on $name', (fw) => {
  it('t counts down to the oldest entry leaving the window; Retry-After is never earlier than t', async () => {
    const { store, clock } = stillStore();
    const app = fw.app([fw.rateLimit({ store, limit: 3, window: '1m' })]);
    const seen: { r: unknown; t: unknown }[] = [];
    for (const advance of [0, 20_000, 10_000]) {
      clock.now += advance;
      const response = await request(app).get('/hello');
      expect(response.status).toBe(200);
      const { name, params } = rateLimitItem(response.headers['ratelimit']);
      expect(name).toBe('3-in-1m');
      seen.push({ r: params.r, t: params.t });
      expect(parseList(String(response.headers['ratelimit-policy']))).toEqual([['3-in-1m', new Map<string, unknown>([['q', 3], ['w', 60]])]]);
    }
    // One more unit comes back when the first request (at 0) leaves: at 60 s.
    expect(seen).toEqual([
      { r: 2, t: 60 },
      { r: 1, t: 40 },
      { r: 0, t: 30 },
    ]);
    clock.now += 5_000;
    const limited = await request(app).get('/hello');
    expect(limited.status).toBe(429);
    const { params } = rateLimitItem(limited.headers['ratelimit']);
    expect(params).toEqual({ r: 0, t: 25 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(params.t as number);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(limited.text)).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      title: 'Quota Exceeded',
      status: 429,
      'violated-policies': ['3-in-1m'],
    });
  });

  it("draft-8, as -08 wrote it: t is until the quota resets, the same moment as Retry-After when refused", async () => {
    const { store, clock } = stillStore();
    const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', headers: 'draft-8' })]);
    await request(app).get('/hello');
    clock.now += 20_000;
    const second = await request(app).get('/hello');
    expect(rateLimitItem(second.headers['ratelimit']).params).toEqual({ r: 0, t: 60 });
    clock.now += 10_000;
    const limited = await request(app).get('/hello');
    expect(rateLimitItem(limited.headers['ratelimit']).params).toEqual({ r: 0, t: 30 });
    expect(limited.headers['retry-after']).toBe('30');
  });

  it('partitionKey: pk is the same Byte Sequence for one client, another for another, never the key itself', async () => {
    const { store } = stillStore();
    const app = fw.app([fw.rateLimit({ store, limit: 5, window: '1m', key: clientKey, partitionKey: { secret: 'pk-secret' } })]);
    const pkOf = async (client: string) => {
      const response = await request(app).get('/hello').set('x-client', client);
      expect(response.headers['ratelimit']).not.toContain(client);
      return Buffer.from(rateLimitItem(response.headers['ratelimit']).params.pk as ArrayBuffer).toString('hex');
    };
    const alice = await pkOf('alice');
    expect(alice).toHaveLength(32);
    expect(await pkOf('alice')).toBe(alice);
    expect(await pkOf('bob')).not.toBe(alice);
  });

  it("quotaUnit: qu on RateLimit-Policy, e.g. a quota of content bytes charged through cost", async () => {
    const { store } = stillStore();
    const app = fw.app([fw.rateLimit({ store, limit: 1_000, window: '1m', cost: () => 100, quotaUnit: 'content-bytes' })]);
    const response = await request(app).post('/hello');
    const [[, params]] = parseList(String(response.headers['ratelimit-policy'])) as [Item];
    expect(Object.fromEntries(params)).toEqual({ q: 1_000, w: 60, qu: 'content-bytes' });
    expect(rateLimitItem(response.headers['ratelimit']).params).toMatchObject({ r: 900 });
  });
});
