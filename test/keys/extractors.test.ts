import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { compileKeySpec, keys, validateKeySpec, type KeySpec, type KeySpecOptions } from '../../src/keys/index.js';

/** A request's key under `spec`: a string when every extractor that ran was synchronous. */
function resolveKey(spec: KeySpec, req: unknown, options?: KeySpecOptions): string | Promise<string> {
  return compileKeySpec(spec, options)(req);
}

/** The same, always as a promise. */
async function extractKey(spec: KeySpec, req: unknown, options?: KeySpecOptions): Promise<string> {
  return resolveKey(spec, req, options);
}

/** A request as both frameworks expose it to extractors (Express `req` / Koa `ctx`). */
function fakeRequest(parts: { ip?: string; headers?: Record<string, string | string[]>; query?: unknown; user?: unknown; headersDistinct?: Record<string, string[]> } = {}) {
  return { ip: parts.ip ?? '203.0.113.7', headers: parts.headers ?? {}, query: parts.query ?? {}, user: parts.user, headersDistinct: parts.headersDistinct };
}

describe('keys.header()', () => {
  const apiKey = keys.header('X-Api-Key');

  it('namespaces the value under the lower-case header name', () => {
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': 'k-123' } }))).toBe('header:x-api-key:k-123');
  });

  it('yields nothing when the header is absent or empty', () => {
    expect(apiKey(fakeRequest())).toBeUndefined();
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': '' } }))).toBeUndefined();
  });

  it('takes the first of repeated headers, as an array or as Node joins them', () => {
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': ['first', 'second'] } }))).toBe('header:x-api-key:first');
    const joined = fakeRequest({ headers: { 'x-api-key': 'first, second' }, headersDistinct: { 'x-api-key': ['first', 'second'] } });
    expect(apiKey(joined)).toBe('header:x-api-key:first');
    // One header whose value has a comma is kept whole.
    const single = fakeRequest({ headers: { 'x-api-key': 'a,b' }, headersDistinct: { 'x-api-key': ['a,b'] } });
    expect(apiKey(single)).toBe('header:x-api-key:a,b');
  });

  it('never throws on hostile values: huge, NUL/CRLF, UTF-8, missing headers object', () => {
    const huge = 'x'.repeat(15_000);
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': huge } }))).toBe(`header:x-api-key:${huge}`);
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': 'a\u0000b\r\nc' } }))).toBe('header:x-api-key:a\u0000b\r\nc');
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': 'ключ🔑' } }))).toBe('header:x-api-key:ключ🔑');
    expect(apiKey({} as never)).toBeUndefined();
    expect(apiKey(fakeRequest({ headers: { 'x-api-key': [] } }))).toBeUndefined();
  });

  it.each([[''], ['bad name'], ['x:y'], [42], [undefined]])('rejects the header name %s with a ConfigError', (name) => {
    expect(() => keys.header(name as string)).toThrow(ConfigError);
    expect(() => keys.header(name as string)).toThrow(/keys.header\(\) name must be an HTTP header name/);
  });
});

describe('keys.user()', () => {
  it('namespaces string and number ids', () => {
    const user = keys.user((req) => req.user?.id);
    expect(user(fakeRequest({ user: { id: 'u-1' } }))).toBe('user:u-1');
    expect(user(fakeRequest({ user: { id: 42 } }))).toBe('user:42');
  });

  it('yields nothing for anonymous requests and for values that would collapse into one shared key', () => {
    const user = keys.user((req) => req.user);
    for (const value of [undefined, null, '', Number.NaN, Infinity, { id: 1 }, ['a'], true]) {
      expect(user(fakeRequest({ user: value }))).toBeUndefined();
    }
  });

  it('awaits an async lookup instead of keying "[object Promise]"', async () => {
    const user = keys.user(async (req) => req.user?.id);
    await expect(user(fakeRequest({ user: { id: 7 } }))).resolves.toBe('user:7');
    await expect(user(fakeRequest())).resolves.toBeUndefined();
  });

  it('rejects a non-function with a ConfigError', () => {
    expect(() => keys.user('id' as never)).toThrow(/keys.user\(\) argument must be a function/);
  });
});

describe('keys.query()', () => {
  const page = keys.query('tenant');

  it('namespaces the first value of the parameter', () => {
    expect(page(fakeRequest({ query: { tenant: 'acme' } }))).toBe('query:tenant:acme');
    expect(page(fakeRequest({ query: { tenant: ['acme', 'evil'] } }))).toBe('query:tenant:acme');
  });

  it('yields nothing for absent, empty, nested or inherited values', () => {
    expect(page(fakeRequest())).toBeUndefined();
    expect(page(fakeRequest({ query: { tenant: '' } }))).toBeUndefined();
    expect(page(fakeRequest({ query: { tenant: { $gt: '' } } }))).toBeUndefined();
    expect(page(fakeRequest({ query: { tenant: [{ a: 1 }] } }))).toBeUndefined();
    expect(keys.query('constructor')(fakeRequest({ query: {} }))).toBeUndefined();
    expect(page({ headers: {} } as never)).toBeUndefined();
  });

  it('rejects an empty name with a ConfigError', () => {
    expect(() => keys.query('')).toThrow(/keys.query\(\) name must be a non-empty string; got ""/);
  });
});

describe('keys.all()', () => {
  const userAndTenant = keys.all(
    keys.user((req) => req.user?.id),
    keys.query('tenant'),
  );

  it('combines every part, and yields nothing when one part yields nothing', () => {
    expect(userAndTenant(fakeRequest({ user: { id: 1 }, query: { tenant: 'a' } }))).toBe('all:6:user:114:query:tenant:a');
    expect(userAndTenant(fakeRequest({ user: { id: 1 } }))).toBeUndefined();
  });

  it('combines unambiguously: parts that concatenate alike give different keys', () => {
    const pair = (a: string, b: string) => keys.all(() => a, () => b)(fakeRequest());
    expect(pair('ab', 'c')).not.toBe(pair('a', 'bc'));
    expect(pair('a:1', '2')).not.toBe(pair('a', '1:2'));
  });

  it('awaits async parts', async () => {
    const mixed = keys.all(async () => 'user:1', () => 'route:/x');
    await expect(mixed(fakeRequest())).resolves.toBe('all:6:user:18:route:/x');
    const missing = keys.all(async () => 'user:1', async () => undefined);
    await expect(missing(fakeRequest())).resolves.toBeUndefined();
  });

  // A review found the process exiting: the async part's rejection was never handled.
  it('leaves no unhandled rejection when a later part throws while an async part is pending', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const throwing = keys.all(async () => { throw new Error('session lookup failed'); }, () => { throw new Error('no tenant'); });
      expect(() => throwing(fakeRequest())).toThrow('no tenant');
      const invalid = keys.all(async () => { throw new Error('session lookup failed'); }, () => ({}) as never);
      expect(() => invalid(fakeRequest())).toThrow(ConfigError);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('rejects no parts and non-functions with a ConfigError naming the argument', () => {
    expect(() => keys.all()).toThrow(/keys.all\(\) needs at least one key extractor/);
    expect(() => keys.all(keys.ip(), 'user' as never)).toThrow(/keys.all\(\) argument 2 must be a key extractor function; got "user"/);
  });
});

describe('extractKey() and key specs', () => {
  const spec = [keys.header('x-api-key'), keys.user((req) => req.user?.id)];

  it('uses the first extractor that yields', async () => {
    await expect(extractKey(spec, fakeRequest({ headers: { 'x-api-key': 'k' }, user: { id: 1 } }))).resolves.toBe('header:x-api-key:k');
    await expect(extractKey(spec, fakeRequest({ user: { id: 1 } }))).resolves.toBe('user:1');
  });

  it('falls back to the IP when nothing yields, never to a shared empty key', async () => {
    await expect(extractKey(spec, fakeRequest({ ip: '198.51.100.4' }))).resolves.toBe('ip:198.51.100.4');
    await expect(extractKey(() => undefined, fakeRequest({ ip: '2001:db8:0:1::9' }))).resolves.toBe('ip:2001:db8::/56');
    await expect(extractKey(() => '', fakeRequest({ ip: '198.51.100.5' }))).resolves.toBe('ip:198.51.100.5');
    await expect(extractKey(() => null, fakeRequest({ ip: '198.51.100.6' }))).resolves.toBe('ip:198.51.100.6');
  });

  it('rejects with a ConfigError an extractor value that is no key (an object is a bug, not "no key")', async () => {
    await expect(extractKey(() => ({}) as never, fakeRequest({ ip: '198.51.100.6' }))).rejects.toThrow(
      'key must return a string, a finite number or a list of strings (undefined, null or \'\' for "no key"); got {}',
    );
  });

  it("uses a raw function's output as is (strings, and finite numbers as text)", async () => {
    await expect(extractKey((req) => `tenant-${req.query.t}`, fakeRequest({ query: { t: 'x' } }))).resolves.toBe('tenant-x');
    await expect(extractKey(() => 42 as never, fakeRequest())).resolves.toBe('42');
  });

  it('resolves synchronously when every extractor that ran is synchronous', async () => {
    expect(resolveKey(spec, fakeRequest({ user: { id: 2 } }))).toBe('user:2');
    expect(compileKeySpec(spec)(fakeRequest())).toBe('ip:203.0.113.7');
    const withAsync = compileKeySpec([async () => undefined, keys.user((req) => req.user?.id)]);
    const pending = withAsync(fakeRequest({ user: { id: 3 } }));
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).resolves.toBe('user:3');
  });

  it("surfaces a throwing extractor (a bug in the app's code) as a rejection", async () => {
    const broken = () => {
      throw new TypeError('boom');
    };
    await expect(extractKey(broken, fakeRequest())).rejects.toThrow('boom');
    await expect(extractKey([async () => Promise.reject(new TypeError('async boom'))], fakeRequest())).rejects.toThrow('async boom');
  });

  it('validateKeySpec accepts a function or a non-empty array of functions', () => {
    const fn = keys.ip();
    expect(validateKeySpec(fn, 'key')).toBe(fn);
    expect(validateKeySpec([fn], 'key')).toEqual([fn]);
  });

  it.each([
    [undefined, /^key must be a key extractor .*; got undefined$/],
    ['ip', /^key must be a key extractor .*; got "ip"$/],
    [[], /^key must be a key extractor .*; got \[\]$/],
    [[keys.ip(), 'user'], /^key\[1\] must be a key extractor function .*; got "user"$/],
  ])('validateKeySpec rejects %s with a ConfigError naming the option', (spec, message) => {
    expect(() => validateKeySpec(spec, 'key')).toThrow(ConfigError);
    expect(() => validateKeySpec(spec, 'key')).toThrow(message);
  });
});

describe('keys.header() and keys.query() on real requests', () => {
  const apiKey = keys.header('x-api-key');
  const tenant = keys.query('tenant');

  const apps: [string, () => Parameters<typeof request>[0]][] = [
    [
      'express',
      () => {
        const app = express();
        app.get('/', (req, res) => {
          res.json({ header: apiKey(req) ?? null, query: tenant(req) ?? null });
        });
        return app;
      },
    ],
    [
      'koa',
      () => {
        const app = new Koa();
        app.use((ctx) => {
          ctx.body = { header: apiKey(ctx) ?? null, query: tenant(ctx) ?? null };
        });
        return app.callback();
      },
    ],
  ];

  it.each(apps)('takes the first of repeated headers and query parameters on %s', async (_name, makeApp) => {
    // superagent sends an array as repeated header lines; its types only admit that for Cookie.
    const repeated = ['first', 'second'] as unknown as string;
    const response = await request(makeApp()).get('/?tenant=acme&tenant=evil').set('X-Api-Key', repeated).expect(200);
    expect(response.body).toEqual({ header: 'header:x-api-key:first', query: 'query:tenant:acme' });
  });

  it.each(apps)('yields nothing for an absent header and a nested query value on %s', async (_name, makeApp) => {
    const response = await request(makeApp()).get('/?tenant[$gt]=').expect(200);
    expect(response.body).toEqual({ header: null, query: null });
  });
});

describe('values an extractor may return', () => {
  const req = { ip: '192.0.2.9' };

  it('takes numbers as their text and lists of strings (Express 5 wildcard params) joined with "/"', () => {
    expect(resolveKey(() => 42, req)).toBe('42');
    expect(resolveKey(() => ['a', 'b', 'c'], req)).toBe('a/b/c');
    expect(resolveKey(() => [], req)).toBe('ip:192.0.2.9'); // no key → the IP
    expect(() => resolveKey(() => [1, 2] as unknown as string[], req)).toThrow('key must return a string, a finite number or a list of strings');
    expect(() => resolveKey(() => true as never, req)).toThrow('got true');
  });

  it('lets keys.all() combine numbers and lists too, and give up when a part yields nothing', async () => {
    expect(resolveKey(keys.all(() => 7, () => ['x', 'y']), req)).toBe('all:1:73:x/y');
    expect(resolveKey(keys.all(() => 7, () => undefined), req)).toBe('ip:192.0.2.9');
    await expect(resolveKey(keys.all(async () => 7, () => 'z'), req)).resolves.toBe('all:1:71:z');
  });

  it("types `(req) => req.params.id` on an Express 5 route (params may be string | string[])", async () => {
    const app = express();
    const resolver = compileKeySpec((req: express.Request) => req.params.path);
    app.get('/files/*path', async (req, res) => {
      res.send(await resolver(req));
    });
    const response = await request(app).get('/files/a/b.txt');
    expect(response.text).toBe('a/b.txt');
  });
});
