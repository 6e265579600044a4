/**
 * Shadow mode over HTTP, the same cases on every framework of `frameworks`: a shadow limiter
 * never refuses (no 429, no 503 when failing closed) and shows a client nothing (no quota
 * headers, no Retry-After), while `req.rateLimit` / `onDecision` get the decision an enforcing
 * limiter would make, marked shadow; a route table mixes shadow and enforced rules, the response
 * following the enforced ones. Stores are MemoryStores with a virtual clock held still.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import { stillStore } from './support/still-store.js';
import { failingStore } from '../core/fake-stores.js';
import { frameworks, recordingLogger } from './frameworks.js';

const fixedKey = () => 'k';
const quotaHeaders = (headers: Record<string, unknown>) => Object.keys(headers).filter((name) => name.includes('ratelimit') || name === 'retry-after');

describe.each(frameworks)('shadow mode on $name', (fw) => {
  it('never refuses nor shows anything, and exposes the decision an enforcing limiter would make', async () => {
    const store = stillStore().store;
    const decisions: Decision[] = [];
    const onDecision = (_req: unknown, decision: Decision) => void decisions.push(decision);
    const app = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: fixedKey, mode: 'shadow', onDecision })]);
    for (let i = 0; i < 3; i++) {
      const response = await request(app).get('/hello');
      expect(response.status).toBe(200);
      expect(quotaHeaders(response.headers)).toEqual([]);
    }
    const exposed = await request(app).get('/decision');
    expect(exposed.status).toBe(200);
    expect(exposed.body.decision).toMatchObject({ allowed: false, shadow: true, reason: 'limited', remaining: 0, retryAfterMs: 60_000 });
    expect(decisions.map((d) => [d.allowed, d.shadow, d.remaining])).toEqual([
      [true, true, 1],
      [true, true, 0],
      [false, true, 0],
      [false, true, 0],
    ]);
    // The log holds what an enforcing limiter would have recorded: the two it admitted.
    const enforcing = fw.app([fw.rateLimit({ store, limit: 2, window: '1m', key: fixedKey })]);
    expect((await request(enforcing).get('/hello')).status).toBe(429);
  });

  it('does not answer 503 when failing closed: the request goes through with the failure on the decision', async () => {
    const logger = recordingLogger();
    let seen: Decision | undefined;
    const app = fw.app([
      fw.rateLimit({ store: failingStore(), limit: 2, window: '1m', mode: 'shadow', onStoreError: 'closed', logger, onDecision: (_req: unknown, d: Decision) => void (seen = d) }),
    ]);
    const response = await request(app).get('/hello');
    expect(response.status).toBe(200);
    expect(quotaHeaders(response.headers)).toEqual([]);
    expect(seen).toMatchObject({ allowed: false, shadow: true, reason: 'store-error' });
  });

  it('a route table mixes modes: a shadow rule never refuses, the response follows the enforced rules', async () => {
    const store = stillStore().store;
    const seen: Decision[] = [];
    const app = fw.app([
      fw.rateLimitRoutes({
        store,
        key: fixedKey,
        onDecision: (_req: unknown, d: Decision) => void seen.push(d),
        routes: [
          { route: '/api/*', limit: 3, window: '1m', name: 'api' },
          { route: '/api/export', limit: 1, window: '1m', name: 'export', mode: 'shadow' },
        ],
      }),
    ]);
    const first = await request(app).get('/api/export');
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"api/3-in-1m";q=3;w=60');
    expect(first.headers['ratelimit']).toBe('"api/3-in-1m";r=2;t=60');
    const second = await request(app).get('/api/export');
    expect(second.status).toBe(200);
    expect(second.headers['ratelimit']).toBe('"api/3-in-1m";r=1;t=60');
    expect(seen[1]).toMatchObject({ allowed: false, shadow: true, policy: { name: 'export/1-in-1m' } });
    await request(app).get('/api/other');
    const refused = await request(app).get('/api/export');
    expect(refused.status).toBe(429);
    expect(refused.headers['ratelimit']).toBe('"api/3-in-1m";r=0;t=60');
    expect(refused.body['violated-policies']).toEqual(['api/3-in-1m']);
    expect(seen[3]).toMatchObject({ allowed: false, shadow: false, policy: { name: 'api/3-in-1m' } });
  });

  it("a table's mode applies to every rule without one; a rule may enforce in a shadow table", async () => {
    const store = stillStore().store;
    const app = fw.app([
      fw.rateLimitRoutes({
        store,
        key: fixedKey,
        mode: 'shadow',
        routes: [
          { route: '/a', limit: 1, window: '1m' },
          { route: '/b', limit: 1, window: '1m', mode: 'enforce' },
        ],
      }),
    ]);
    const statuses: number[] = [];
    for (const path of ['/a', '/a', '/b', '/b']) statuses.push((await request(app).get(path)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('rejects a bad mode, naming the option', () => {
    expect(() => fw.rateLimit({ limit: 1, window: '1m', mode: 'dry-run' })).toThrow("mode must be 'enforce' or 'shadow'");
    expect(() => fw.rateLimitRoutes({ routes: [{ route: '/a', limit: 1, window: '1m', mode: 'off' }] })).toThrow("routes[0].mode must be 'enforce' or 'shadow'");
  });
});
