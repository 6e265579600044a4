/** Parsing the Idempotency-Key header: sf-string or bare, 1–255 printable ASCII, sent once. */
import { describe, expect, it } from 'vitest';
import { readIdempotencyKey } from '../../src/adapters/http/idempotency-key.js';

describe('readIdempotencyKey', () => {
  it.each([
    ['abc', 'abc'],
    ['"abc"', 'abc'],
    ['  "abc"\t', 'abc'],
    ['8e03978e-40d5-43e8-bc93-6894a57f9324', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['"with \\"quotes\\" and \\\\"', 'with "quotes" and \\'],
    ['has spaces inside', 'has spaces inside'],
    ['k'.repeat(255), 'k'.repeat(255)],
    ['"a, b"', 'a, b'], // a quoted key may hold a comma
  ])('reads %j as the key %j', (value, key) => {
    expect(readIdempotencyKey([value])).toEqual({ ok: true, key });
  });

  it.each([
    [undefined, 'missing'],
    [[], 'missing'],
    [['a', 'b'], 'repeated'],
    [['a, b'], 'repeated'], // two lines a proxy joined into one: a bare key holds no comma
    [['a,b'], 'repeated'],
    [[''], 'empty'],
    [['   '], 'empty'],
    [['""'], 'empty'],
    [['k'.repeat(256)], 'too-long'],
    [['"' + 'k'.repeat(256) + '"'], 'too-long'],
    [['tab\tinside'], 'invalid-characters'],
    [['nul\u0000'], 'invalid-characters'],
    [['del\u007f'], 'invalid-characters'],
    [['ünïcödé'], 'invalid-characters'],
    [['"unterminated'], 'malformed'],
    [['"a"b"'], 'malformed'],
    [['"bad \\escape"'], 'malformed'],
    [['"a", "b"'], 'malformed'],
  ] as [string[] | undefined, string][])('refuses %j: %s', (values, problem) => {
    const reading = readIdempotencyKey(values);
    expect(reading.ok).toBe(false);
    expect(reading.ok === false && reading.problem).toBe(problem);
    expect(reading.ok === false && reading.detail.length).toBeGreaterThan(10);
  });
});
