/** withLock options are validated once, at construction, with ConfigErrors naming the option; the logger option also receives the scope's proxy warnings. */
import { randomUUID } from 'node:crypto';
import type { RequestListener } from 'node:http';
import express from 'express';
import Koa from 'koa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { withLock as expressWithLock } from '../../src/adapters/express/with-lock.js';
import { withLock as koaWithLock } from '../../src/adapters/koa/with-lock.js';
import { withLock as fastifyWithLock } from '../../src/adapters/fastify/with-lock.js';
import { withLock as honoWithLock } from '../../src/adapters/hono/with-lock.js';
import { listen, send } from './support/http.js';

describe.each([
  ['express', expressWithLock],
  ['koa', koaWithLock],
  ['fastify', fastifyWithLock],
  ['hono', honoWithLock],
] as [string, (options?: unknown, handler?: unknown) => unknown][])('%s withLock options', (_name, withLock) => {
  it.each([
    [{ ttl: 0 }, /^ttl must be/],
    [{ ttl: 1 }, /^ttl must be at least 150 ms, so the lease can be auto-extended every ttl\/3 .*; got 1$/],
    [{ ttl: '100ms', replay: true }, /^ttl must be at least 150 ms.*; got "100ms"$/],
    [{ ttl: '30s', maxHold: '10s' }, /^maxHold must be at least the lease ttl/],
    [{ wait: -1 }, /^wait must be 0 or a whole number/],
    [{ timeout: 'soon' }, /^timeout must be/],
    [{ key: 'idempotency-key' }, /^key must be a key extractor/],
    [{ scope: [] }, /^scope must be a key extractor/],
    [{ onStoreError: 'ignore' }, /^onStoreError must be 'open', 'closed'/],
    [{ onBusy: 409 }, /^onBusy must be a function/],
    [{ prefix: 'has space' }, /^prefix must be/],
    [{ logger: {} }, /^logger must be an object with a warn/],
    [{ store: { consume() {} } }, /^store must be a Store with acquireLock/],
    [{ replay: { ttl: '24h' }, store: { acquireLock() {}, extendLock() {}, releaseLock() {} } }, /^store must be a Store with beginIdempotent/],
    [{ replay: 'yes' }, /^replay options must be an object/],
    [{ replay: { ttl: 0 } }, /^replay.ttl must be/],
    [{ replay: { maxBodyBytes: -1 } }, /^replay.maxBodyBytes must be an integer from 0/],
    [{ replay: { storeServerErrors: 'no' } }, /^replay.storeServerErrors must be true or false/],
    [{ replay: { headers: ['Set-Cookie'] } }, /^replay.headers\[0\] "Set-Cookie" is never replayed/],
    [{ replay: { headers: ['bad header'] } }, /^replay.headers\[0\] must be an HTTP header name/],
    [{ replay: { fingerprint: 'body' } }, /^replay.fingerprint must be a function/],
    [{ replay: { cache: true } }, /^replay has no option "cache"/],
    [{ lease: '30s' }, /^withLock has no option "lease"/],
  ])('rejects %j', (options, message) => {
    expect(() => withLock(options as never)).toThrow(ConfigError);
    expect(() => withLock(options as never)).toThrow(message);
  });

  it('rejects a handler that is not a function', () => {
    expect(() => withLock({}, 'handler' as never)).toThrow(/handler must be a function/);
  });

  it('accepts the documented forms', () => {
    expect(typeof withLock()).toBe('function');
    expect(typeof withLock({ ttl: '30s', wait: 0, replay: true })).toBe('function');
    expect(typeof withLock({ key: [() => undefined, () => 'k'], scope: () => 'me', replay: { ttl: '1h', headers: ['X-Order-Id'], maxBodyBytes: 0 } })).toBe('function');
    expect(typeof withLock({ ttl: undefined, replay: undefined })).toBe('function');
    expect(typeof withLock({ ttl: 150, replay: { ttl: 1 } })).toBe('function');
  });
});

/**
 * The scope's proxy-setting warnings (default `keys.ip()`, and the IP fallback of a `scope` that
 * yields nothing) go to withLock's `logger`, not to console. They are logged once per process, so
 * each test imports fresh modules.
 */
describe('withLock proxy warnings', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function warningsFrom(lockOptions: Record<string, unknown>, framework: 'express' | 'koa'): Promise<{ lines: string[]; status: number }> {
    vi.resetModules();
    const lines: string[] = [];
    const logger = { warn: (line: string) => void lines.push(line) };
    let listener: RequestListener;
    if (framework === 'express') {
      const { withLock } = await import('../../src/express.js');
      const app = express();
      app.set('trust proxy', true);
      app.post('/', withLock({ ...lockOptions, logger }), (_req, res) => void res.status(201).send('ok'));
      listener = app as unknown as RequestListener;
    } else {
      const { withLock } = await import('../../src/koa.js');
      const app = new Koa();
      app.proxy = true; // without maxIpsCount: permissive
      app.use(withLock({ ...lockOptions, logger }));
      app.use((ctx) => {
        ctx.status = 201;
        ctx.body = 'ok';
      });
      listener = app.callback();
    }
    const server = await listen(listener);
    try {
      const response = await send(server.port, { headers: { 'Idempotency-Key': `proxy-${randomUUID()}`, 'X-Forwarded-For': '198.51.100.7' } });
      return { lines, status: response.status };
    } finally {
      await server.close();
    }
  }

  it.each([
    ['express', 'default scope', {}],
    ['express', 'default scope, replay', { replay: true }],
    ['express', 'IP fallback of a scope that yields nothing', { key: (): string => 'cart', scope: (): undefined => undefined }],
    ['koa', 'default scope', {}],
    ['koa', 'IP fallback of a scope that yields nothing', { key: (): string => 'cart', scope: [(): undefined => undefined] }],
  ] as const)('%s, %s: to the configured logger', async (framework, _case, lockOptions) => {
    const consoleWarn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const { lines, status } = await warningsFrom(lockOptions, framework);
    expect(status).toBe(201);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[ratelock\] ERR_RATELOCK_PERMISSIVE_TRUST_PROXY/);
    expect(consoleWarn).not.toHaveBeenCalled();
  });
});
