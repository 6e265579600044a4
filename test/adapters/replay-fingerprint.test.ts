/**
 * The default request fingerprint: method + concrete path + sorted query + body, where a parsed
 * JSON body is canonical (object key order does not matter, array order does) and a raw body
 * counts byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson, requestFingerprint } from '../../src/adapters/http/idempotency-fingerprint.js';

const base = { method: 'POST', url: '/orders/42?b=2&a=1', body: { amount: 5, items: [{ sku: 'x', qty: 1 }], meta: { z: 1, y: 2 } } };
const fp = (change: { method?: string; url?: string; body?: unknown } = {}) => requestFingerprint({ ...base, ...change });

describe('requestFingerprint', () => {
  it('is a 43-character base64url SHA-256, stable for the same request', () => {
    expect(fp()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fp()).toBe(fp());
  });

  it('ignores JSON key order at every depth, query parameter order and the method’s case', () => {
    expect(fp({ body: { meta: { y: 2, z: 1 }, items: [{ qty: 1, sku: 'x' }], amount: 5 } })).toBe(fp());
    expect(fp({ url: '/orders/42?a=1&b=2' })).toBe(fp());
    expect(fp({ method: 'post' })).toBe(fp());
  });

  it.each([
    ['method', { method: 'PUT' }],
    ['path', { url: '/orders/43?b=2&a=1' }],
    ['query value', { url: '/orders/42?b=3&a=1' }],
    ['repeated query order', { url: '/orders/42?b=2&a=1&a=0' }],
    ['body value', { body: { ...base.body, amount: 6 } }],
    ['array order', { body: { ...base.body, items: [{ sku: 'x', qty: 1 }, { sku: 'y', qty: 1 }] } }],
    ['no body', { body: undefined }],
    ['raw body', { body: Buffer.from(JSON.stringify(base.body)) }],
  ])('changes with the %s', (_what, change) => {
    expect(fp(change as never)).not.toBe(fp());
  });

  it('counts a raw body byte for byte', () => {
    expect(fp({ body: Buffer.from('{"a":1,"b":2}') })).not.toBe(fp({ body: Buffer.from('{"b":2,"a":1}') }));
    expect(fp({ body: 'text' })).toBe(fp({ body: 'text' }));
  });

  it('hashes members named __proto__, constructor or prototype like any other, polluting nothing', () => {
    // As a JSON body parser leaves them: JSON.parse makes "__proto__" an own member.
    const parsed = (json: string): unknown => JSON.parse(json);
    const small = parsed('{"__proto__":{"amount":1}}');
    const large = parsed('{"__proto__":{"amount":999}}');
    expect(fp({ body: small })).not.toBe(fp({ body: large }));
    expect(fp({ body: small })).not.toBe(fp({ body: {} }));
    expect(fp({ body: small })).toBe(fp({ body: parsed('{"__proto__":{"amount":1}}') }));
    expect(canonicalJson(parsed('{"z":1,"__proto__":{"b":2,"a":1}}'))).toBe('{"__proto__":{"a":1,"b":2},"z":1}');
    expect(fp({ body: parsed('{"constructor":{"prototype":{"x":1}}}') })).not.toBe(fp({ body: parsed('{"constructor":{"prototype":{"x":2}}}') }));
    expect(canonicalJson(parsed('{"toString":1,"hasOwnProperty":2}'))).toBe('{"hasOwnProperty":2,"toString":1}');
    expect(({} as Record<string, unknown>).amount).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('canonicalJson follows JSON.stringify for dates, undefined members and array holes', () => {
    const date = new Date('2026-01-02T03:04:05Z');
    expect(canonicalJson({ b: undefined, a: date, c: [undefined, 1, , () => 1], d: 'é"\n', e: -0, f: true, g: null })).toBe(
      JSON.stringify({ a: date, c: [null, 1, null, null], d: 'é"\n', e: 0, f: true, g: null }),
    );
  });

  it('keeps numbers JSON.stringify would write as null apart, and hashes BigInts', () => {
    // A JSON body parser reads 1e400 as Infinity: before, it matched a body of null.
    const parsed = (json: string): unknown => JSON.parse(json);
    const bodies = [parsed('{"a":1e400}'), parsed('{"a":-1e400}'), parsed('{"a":null}'), { a: Number.NaN }, { a: '1e400' }, { a: 10n }, { a: 10 }, { a: '10n' }];
    const prints = bodies.map((body) => fp({ body }));
    expect(new Set(prints).size).toBe(bodies.length);
    expect(canonicalJson({ b: [Infinity, Number.NaN], a: 12345678901234567890n })).toBe('{"a":12345678901234567890n,"b":[Infinity,NaN]}');
    expect(fp({ body: parsed('{"a":1e400}') })).toBe(fp({ body: { a: Infinity } }));
  });
});
