/**
 * Header writers without HTTP: exact strings per mode, sf-string quoting of policy names, the
 * rounding of seconds, and the blocked case (reset = Retry-After), plus the problem+json helper.
 */
import { describe, expect, it } from 'vitest';
import type { Decision, Policy } from '../../src/core/decision.js';
import { headerWriter, retryAfterSeconds, resetSeconds, toSfString, toSeconds, type HeaderMode } from '../../src/adapters/http/headers.js';
import { problem } from '../../src/adapters/http/problem.js';

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

function write(mode: HeaderMode, d: Decision): Record<string, string> {
  const headers: Record<string, string> = {};
  headerWriter(mode)(headers, (target, name, value) => void (target[name] = value), d);
  return headers;
}

describe('header writers', () => {
  it('draft-8: one RateLimit-Policy item per policy, RateLimit for the deciding one', () => {
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

  it('when blocked, reports reset = Retry-After so Retry-After never points before the end of t', () => {
    const blocked = decision({ allowed: false, remaining: 0, retryAfterMs: 2_500, resetMs: 59_000, reason: 'limited' });
    expect(retryAfterSeconds(blocked)).toBe(3);
    expect(resetSeconds(blocked)).toBe(3);
    expect(write('draft-8', blocked).RateLimit).toBe('"1m";r=0;t=3');
  });

  it('never advertises a Retry-After below 1 s, nor a window below 1 s', () => {
    expect(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 1 }))).toBe(1);
    const tiny: Policy = { name: '250ms', limit: 5, windowMs: 250 };
    expect(write('draft-8', decision({ policy: tiny, policies: [tiny], resetMs: 250 }))['RateLimit-Policy']).toBe('"250ms";q=5;w=1');
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
    expect(write('draft-8', decision({ policy: dynamic, policies: [dynamic] }))['RateLimit-Policy']).toBe('"1m";q=7;w=60');
    expect(write('draft-8', decision())['RateLimit-Policy']).toBe('"1m";q=100;w=60, "daily";q=1000;w=86400');
  });
});

describe('problem()', () => {
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
});
