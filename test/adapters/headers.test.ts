/**
 * Header writers without HTTP: exact strings per mode, draft-10's `t` (until one more unit) against
 * draft-8's (until the quota resets), partition keys and quota units, what shadow and failed
 * decisions write, sf-string quoting of policy names, the rounding of seconds, and the
 * problem+json helper. Every structured header is also read back with the independent parser
 * `structured-headers` (RFC 9651), never with our own writer.
 */
import { createHash, createHmac } from 'node:crypto';
import { parseList, type Item } from 'structured-headers';
import { describe, expect, it } from 'vitest';
import type { Decision, Policy } from '../../src/core/decision.js';
import { StoreError } from '../../src/core/errors.js';
import {
  headerWriter,
  precomputeHeaderStrings,
  resetSeconds,
  resolveStructuredHeaderOptions,
  retryAfterSeconds,
  toSeconds,
  toSfString,
  type HeaderMode,
  type StructuredHeaderOptions,
} from '../../src/adapters/http/headers.js';
import { passes, quotaExceededAnswer } from '../../src/adapters/http/answers.js';
import { problem, QUOTA_EXCEEDED_TYPE } from '../../src/adapters/http/problem.js';

const minute: Policy = { name: '1m', limit: 100, windowMs: 60_000 };
const day: Policy = { name: 'daily', limit: 1000, windowMs: 86_400_000 };

function decision(overrides: Partial<Decision> = {}): Decision {
  return {
    allowed: true,
    limit: 100,
    remaining: 41,
    resetMs: 30_001,
    nextQuotaMs: 12_001,
    retryAfterMs: 0,
    key: 'ip:203.0.113.7',
    policy: minute,
    policies: [minute, day],
    reason: 'allowed',
    shadow: false,
    ...overrides,
  };
}

function write(mode: HeaderMode, d: Decision, options?: StructuredHeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  headerWriter(mode, options)(headers, (target, name, value) => void (target[name] = value), d);
  return headers;
}

/** A structured list parsed by `structured-headers`, as `[value, parameters]` pairs. */
function parsed(value: string | undefined): { value: unknown; params: Record<string, unknown> }[] {
  expect(value).toBeTypeOf('string');
  return parseList(value!).map((member) => {
    const [item, params] = member as Item;
    return { value: item, params: Object.fromEntries(params) };
  });
}

const blocked = (overrides: Partial<Decision> = {}): Decision =>
  decision({ allowed: false, remaining: 0, resetMs: 59_000, nextQuotaMs: 2_500, retryAfterMs: 2_500, reason: 'limited', ...overrides });

describe('header writers', () => {
  it('draft-10: t is the time until ONE more unit frees (nextQuotaMs), not until the quota resets', () => {
    expect(write('draft-10', decision())).toEqual({
      'RateLimit-Policy': '"1m";q=100;w=60, "daily";q=1000;w=86400',
      RateLimit: '"1m";r=41;t=13',
    });
  });

  it('draft-8: as -08 wrote it, t is the time until the quota resets (the log is empty)', () => {
    expect(write('draft-8', decision())).toEqual({
      'RateLimit-Policy': '"1m";q=100;w=60, "daily";q=1000;w=86400',
      RateLimit: '"1m";r=41;t=31',
    });
  });

  it('draft-7', () => {
    expect(write('draft-7', decision())).toEqual({
      'RateLimit-Policy': '100;w=60, 1000;w=86400',
      RateLimit: 'limit=100, remaining=41, reset=31',
    });
  });

  it('draft-6', () => {
    expect(write('draft-6', decision())).toEqual({
      'RateLimit-Policy': '100;w=60, 1000;w=86400',
      'RateLimit-Limit': '100',
      'RateLimit-Remaining': '41',
      'RateLimit-Reset': '31',
    });
  });

  it('legacy: X-RateLimit-Reset in seconds until reset, not a timestamp', () => {
    expect(write('legacy', decision())).toEqual({
      'X-RateLimit-Limit': '100',
      'X-RateLimit-Remaining': '41',
      'X-RateLimit-Reset': '31',
    });
  });

  it('draft-8 when blocked reports t = Retry-After (-08: the same point in time)', () => {
    const refused = blocked({ nextQuotaMs: 1_200 });
    expect(retryAfterSeconds(refused)).toBe(3);
    expect(resetSeconds(refused)).toBe(3);
    expect(write('draft-8', refused).RateLimit).toBe('"1m";r=0;t=3');
  });

  it('draft-10 when blocked reports t until the next unit, never after Retry-After (-10 §6)', () => {
    // A cost-3 request waits for three entries; the oldest frees one unit sooner.
    const refused = blocked({ nextQuotaMs: 1_200, retryAfterMs: 4_100 });
    expect(write('draft-10', refused).RateLimit).toBe('"1m";r=0;t=2');
    expect(retryAfterSeconds(refused)).toBe(5);
    // Cost 1 on a full log: the same entry decides both.
    const full = blocked();
    const t = parsed(write('draft-10', full).RateLimit)[0]!.params.t as number;
    expect(t).toBe(retryAfterSeconds(full));
  });

  it('draft-10 omits t when nothing is waiting to free (an empty log refusing a cost above the limit)', () => {
    const never = blocked({ remaining: 100, resetMs: 0, nextQuotaMs: 0, retryAfterMs: 60_000 });
    expect(write('draft-10', never).RateLimit).toBe('"1m";r=100');
    expect(parsed(write('draft-10', never).RateLimit)[0]!.params).toEqual({ r: 100 });
  });

  it('never advertises a Retry-After below 1 s, nor a window below 1 s', () => {
    expect(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 1 }))).toBe(1);
    const tiny: Policy = { name: '250ms', limit: 5, windowMs: 250 };
    expect(write('draft-10', decision({ policy: tiny, policies: [tiny], resetMs: 250 }))['RateLimit-Policy']).toBe('"250ms";q=5;w=1');
    expect(toSeconds(0)).toBe(0);
    expect(toSeconds(1000)).toBe(1);
    expect(toSeconds(1001)).toBe(2);
  });

  it('quotes policy names as sf-strings', () => {
    expect(toSfString('login/15m')).toBe('"login/15m"');
    expect(toSfString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(toSfString('caf\u00e9\r\n')).toBe('"caf???"');
  });

  it('caches per-policy strings: a dynamic limit gets its own q', () => {
    const dynamic: Policy = { name: '1m', limit: 7, windowMs: 60_000 };
    expect(write('draft-10', decision({ policy: dynamic, policies: [dynamic] }))['RateLimit-Policy']).toBe('"1m";q=7;w=60');
    expect(write('draft-10', decision())['RateLimit-Policy']).toBe('"1m";q=100;w=60, "daily";q=1000;w=86400');
  });
});

describe('partition keys (pk) and quota units (qu)', () => {
  const key = 'ip:203.0.113.7';
  const sha = createHash('sha256').update(key).digest().subarray(0, 16);

  it.each(['draft-10', 'draft-8'] as const)('%s: pk is a Byte Sequence of the first 16 bytes of SHA-256 of the key, never the key', (mode) => {
    const { RateLimit: value } = write(mode, decision(), { partitionKey: true });
    expect(value).toContain(`;pk=:${sha.toString('base64')}:`);
    expect(value).not.toContain('203.0.113.7');
    const pk = parsed(value)[0]!.params.pk;
    expect(pk).toBeInstanceOf(ArrayBuffer);
    expect(Buffer.from(pk as ArrayBuffer)).toEqual(sha);
  });

  it('with { secret }: HMAC-SHA-256, so nobody without the secret can match it to a key', () => {
    const { RateLimit: value } = write('draft-10', decision(), { partitionKey: { secret: 's3cret' } });
    const hmac = createHmac('sha256', 's3cret').update(key).digest().subarray(0, 16);
    expect(Buffer.from(parsed(value)[0]!.params.pk as ArrayBuffer)).toEqual(hmac);
    expect(hmac).not.toEqual(sha);
  });

  it('is only on RateLimit: RateLimit-Policy stays the same for every client', () => {
    const one = write('draft-10', decision(), { partitionKey: true });
    const other = write('draft-10', decision({ key: 'ip:198.51.100.1' }), { partitionKey: true });
    expect(one['RateLimit-Policy']).toBe(other['RateLimit-Policy']);
    expect(one.RateLimit).not.toBe(other.RateLimit);
  });

  it('qu on every RateLimit-Policy item when the unit is not the default "requests"', () => {
    const policies = [minute, day];
    precomputeHeaderStrings(policies);
    const bytes = write('draft-10', decision({ policies }), { quotaUnit: 'content-bytes' });
    expect(bytes['RateLimit-Policy']).toBe('"1m";q=100;w=60;qu="content-bytes", "daily";q=1000;w=86400;qu="content-bytes"');
    expect(parsed(bytes['RateLimit-Policy']).map((item) => item.params.qu)).toEqual(['content-bytes', 'content-bytes']);
    // The same list again: the built value is kept per list.
    expect(write('draft-10', decision({ policies }), { quotaUnit: 'content-bytes' })['RateLimit-Policy']).toBe(bytes['RateLimit-Policy']);
    expect(write('draft-10', decision(), { quotaUnit: 'requests' })['RateLimit-Policy']).not.toContain('qu=');
  });

  it.each<[unknown, unknown, string]>([
    ['yes', undefined, 'partitionKey must be true, false or { secret'],
    [{ secret: '' }, undefined, 'partitionKey must be true, false or { secret'],
    [{}, undefined, 'partitionKey must be true, false or { secret'],
    [{ secret: 's', x: 1 }, undefined, 'partitionKey has no field "x"; allowed fields: secret'],
    [undefined, 'bytes', "quotaUnit must be 'requests' or 'content-bytes'"],
  ])('rejects partitionKey %j / quotaUnit %j', (partitionKey, quotaUnit, message) => {
    expect(() => resolveStructuredHeaderOptions(partitionKey, quotaUnit)).toThrow(message);
  });
});

describe('what shadow and failed decisions write', () => {
  it('a shadow decision writes nothing: a shadow limit has no effect a client can see', () => {
    for (const mode of ['draft-10', 'draft-8', 'draft-7', 'draft-6', 'legacy'] as const) {
      expect(write(mode, blocked({ shadow: true }))).toEqual({});
      expect(write(mode, decision({ shadow: true }))).toEqual({});
    }
  });

  it('a shadow decision that met enforced limits writes the enforced one (what the response follows)', () => {
    const enforced = decision({ policy: day, policies: [day], remaining: 7, nextQuotaMs: 80_000_000 });
    expect(write('draft-10', blocked({ shadow: true, policies: [minute], enforced }))).toEqual({
      'RateLimit-Policy': '"daily";q=1000;w=86400',
      RateLimit: '"daily";r=7;t=80000',
    });
  });

  it('a decision made without the store writes nothing, shadow or not', () => {
    const failed = decision({ reason: 'store-error', error: new StoreError('down'), remaining: 100, nextQuotaMs: 0 });
    expect(write('draft-10', failed)).toEqual({});
    expect(write('draft-10', decision({ shadow: true, enforced: failed }))).toEqual({});
  });

  it('passes(): allowed, or shadow whatever allowed says', () => {
    expect(passes(decision())).toBe(true);
    expect(passes(blocked())).toBe(false);
    expect(passes(blocked({ shadow: true }))).toBe(true);
  });
});

describe('every structured header is valid RFC 9651 (parsed by structured-headers)', () => {
  const awkward: Policy[] = [
    { name: 'login/15m', limit: 5, windowMs: 900_000 },
    { name: 'a"b\\c', limit: 1, windowMs: 1 },
    { name: 'caf\u00e9\r\n', limit: 1_000_000_000, windowMs: 86_400_000 * 365 },
  ];
  const cases: [string, Decision][] = [
    ['allowed', decision()],
    ['blocked', blocked()],
    ['never fits', blocked({ nextQuotaMs: 0, resetMs: 0, remaining: 100 })],
    ...awkward.map((policy): [string, Decision] => [`policy ${JSON.stringify(policy.name)}`, decision({ policy, policies: awkward, remaining: 0, nextQuotaMs: 1 })]),
  ];
  const options: StructuredHeaderOptions[] = [{}, { partitionKey: true, quotaUnit: 'content-bytes' }, { partitionKey: { secret: 'k' } }];

  it.each(cases)('%s', (_label, d) => {
    for (const mode of ['draft-10', 'draft-8'] as const) {
      for (const option of options) {
        const headers = write(mode, d, option);
        const policies = parsed(headers['RateLimit-Policy']);
        expect(policies).toHaveLength(d.policies.length);
        for (const { value, params } of policies) {
          expect(value).toBeTypeOf('string');
          expect(Number.isInteger(params.q) && (params.q as number) >= 0).toBe(true);
          expect(Number.isInteger(params.w) && (params.w as number) >= 1).toBe(true);
        }
        const [limit, ...rest] = parsed(headers.RateLimit);
        expect(rest).toEqual([]);
        expect(limit!.value).toBe(policies[d.policies.indexOf(d.policy)]!.value);
        expect(Number.isInteger(limit!.params.r) && (limit!.params.r as number) >= 0).toBe(true);
        if ('t' in limit!.params) expect(Number.isInteger(limit!.params.t) && (limit!.params.t as number) >= 0).toBe(true);
        if (option.partitionKey) expect((limit!.params.pk as ArrayBuffer).byteLength).toBe(16);
      }
    }
  });
});

describe('problem bodies', () => {
  it('builds an RFC 9457 body with about:blank by default', () => {
    expect(problem(409, 'Conflict', 'in progress')).toEqual({
      contentType: 'application/problem+json',
      body: '{"type":"about:blank","title":"Conflict","status":409,"detail":"in progress"}',
    });
  });

  it('takes type and extension members from extra, never overriding title or status', () => {
    const { body } = problem(429, 'Too Many Requests', undefined, { type: 'urn:x', status: 200, title: 'x', 'violated-policies': ['1m'] });
    expect(JSON.parse(body)).toEqual({ type: 'urn:x', title: 'Too Many Requests', status: 429, 'violated-policies': ['1m'] });
  });

  it("the default 429 is the draft's quota-exceeded problem, with its registered title and the violated policy", () => {
    const answer = quotaExceededAnswer(undefined, blocked(), 429);
    expect(answer.status).toBe(429);
    expect(answer.headers['Content-Type']).toBe('application/problem+json');
    expect(JSON.parse(String(answer.body))).toEqual({
      type: QUOTA_EXCEEDED_TYPE,
      title: 'Quota Exceeded',
      status: 429,
      detail: 'Quota of policy "1m" exceeded (100 per 1m); retry in 3 s.',
      'violated-policies': ['1m'],
    });
  });
});
