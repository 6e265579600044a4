/** Parsing the Idempotency-Key header: sf-string (its parameters ignored) or bare, 1–255 printable ASCII, sent once. */
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
    // An RFC 8941 Item's parameters, which the draft does not define: ignored.
    ['"abc";v=1', 'abc'],
    ['"abc"; v=1;w', 'abc'],
    ['"abc";s="x\\"y";b=?1;c=:aGk=:;d=-1.5;t=tok/en;e=@1700000000;g=%"caf%c3%a9"', 'abc'],
    // A bare key is taken whole.
    ['abc;v=1', 'abc;v=1'],
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
    [['"abc"x'], 'malformed'],
    [['"abc";V=1'], 'malformed'], // parameter keys are lower case
    [['"abc";v='], 'malformed'],
    [['"abc";v=1.2345'], 'malformed'], // a decimal has at most 3 fraction digits
    [['"abc";;v'], 'malformed'],
  ] as [string[] | undefined, string][])('refuses %j: %s', (values, problem) => {
    const reading = readIdempotencyKey(values);
    expect(reading.ok).toBe(false);
    expect(reading.ok === false && reading.problem).toBe(problem);
    expect(reading.ok === false && reading.detail.length).toBeGreaterThan(10);
  });
});
