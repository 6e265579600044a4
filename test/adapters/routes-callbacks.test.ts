/**
 * `rateLimitRoutes()` rules with callbacks and costs, on every framework (MemoryStore): a rule's
 * bad `limit(req)` / `cost(req)` value reaches the error path naming the rule, overlapping rules
 * with different costs charge each its own, and two tables never share a rule's log.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { frameworks, recordingLogger } from './frameworks.js';

describe.each(frameworks)('rateLimitRoutes callbacks on $name', (fw) => {
  // A clock held still: every `t` below is exact.
  const store = () => memoryStoreForTests({ clock: () => 1_700_000_000_000, sweepIntervalMs: 0 });

  it.each([
    [{ route: '/a', limit: () => 0, window: '1m' }, 'routes[0].limit must be an integer from 1 to 1000000000; got 0'],
    [{ route: '/a', limit: 5, window: '1m', cost: async () => -5 }, 'routes[0].cost must be an integer from 1 to 10000; got -5'],
    [{ route: '/a', limit: 5, window: '1m', cost: () => 20_000 }, 'routes[0].cost must be an integer from 1 to 10000; got 20000'],
  ])('sends a bad rule callback value to the error path, naming the rule: %j', async (rule, message) => {
    const app = fw.app([fw.rateLimitRoutes({ store: store(), routes: [rule], logger: recordingLogger() })]);
    const response = await request(app).get('/a');
    expect(response.status).toBe(500);
    expect(response.body).toEqual({ code: 'ERR_RATELOCK_CONFIG', name: 'ConfigError', message });
  });

  it('evaluates a rule limit(req) per request', async () => {
    const limit = (req: unknown) => (fw.header(req, 'x-tier') === 'gold' ? 2 : 1);
    const app = fw.app([fw.rateLimitRoutes({ store: store(), routes: [{ route: '/a', limit, window: '1m', key: 'header:x-user', name: 'a' }] })]);
    expect((await request(app).get('/a').set('x-user', 'u1')).status).toBe(200);
    expect((await request(app).get('/a').set('x-user', 'u1')).status).toBe(429);
    const gold = await request(app).get('/a').set('x-user', 'u2').set('x-tier', 'gold');
    expect(gold.headers['ratelimit-policy']).toBe('"a/1m";q=2;w=60');
  });

  it('charges overlapping rules each its own cost, and the table cost to rules without one', async () => {
    const routes = [
      { route: '/reports/*', limit: 10, window: '1m', name: 'reports' },
      { route: 'POST /reports/export', limit: 10, window: '1m', name: 'export', cost: 4 },
    ];
    const app = fw.app([fw.rateLimitRoutes({ store: store(), routes, cost: 2, logger: recordingLogger() })]);
    const read = await request(app).get('/reports/x');
    expect(read.headers['ratelimit']).toBe('"reports/10-in-1m";r=8;t=60');
    const exported = await request(app).post('/reports/export');
    expect(exported.headers['ratelimit-policy']).toBe('"reports/10-in-1m";q=10;w=60, "export/10-in-1m";q=10;w=60');
    // reports: 10 - 2 (read) - 2 (table cost) = 6; export: 10 - 4 = 6; a tie names the first rule.
    expect(exported.headers['ratelimit']).toBe('"reports/10-in-1m";r=6;t=60');
    // Another export: reports 6 - 2 = 4, export 6 - 4 = 2 → export decides.
    expect((await request(app).post('/reports/export')).headers['ratelimit']).toBe('"export/10-in-1m";r=2;t=60');
  });

  it('keeps two tables with unnamed rules apart on one store (a rule is named after its route, not its index)', async () => {
    const shared = store();
    const logins = fw.rateLimitRoutes({ store: shared, routes: [{ route: 'POST /login', limit: 2, window: '1m' }] });
    const searches = fw.rateLimitRoutes({ store: shared, routes: [{ route: 'GET /search', limit: 2, window: '1m' }] });
    const app = fw.app([logins, searches]);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(app).post('/login')).status);
    const search = await request(app).get('/search');
    expect(search.headers['ratelimit']).toBe('"GET_/search/2-in-1m";r=1;t=60');
    statuses.push(search.status, (await request(app).get('/search')).status, (await request(app).get('/search')).status);
    expect(statuses).toEqual([200, 200, 429, 200, 200, 429]);
  });
});
