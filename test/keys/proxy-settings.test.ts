/**
 * keys.ip() on real Express (5, 4) and Koa (3, 2) apps: the key follows the framework's notion of
 * the client address (RELIABILITY G1), and permissive or missing proxy settings are warned about
 * once per process. Each test imports a fresh copy of the module, so "once" starts over.
 */
import { createRequire } from 'node:module';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/core/store-call.js';

const require = createRequire(import.meta.url);
const express4 = require('express4') as typeof express;
const Koa2 = require('koa2') as typeof Koa;

type IpExtractor = (req: unknown) => unknown;

async function freshKeys(): Promise<typeof import('../../src/keys/index.js')['keys']> {
  vi.resetModules();
  return (await import('../../src/keys/index.js')).keys;
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (message: string) => lines.push(message) };
}

/** A server whose response body is the key `extractor` gives the request. */
type AppFactory = (extractor: IpExtractor, proxy: { trust: unknown }) => Parameters<typeof request>[0];

const expressApp =
  (factory: typeof express): AppFactory =>
  (extractor, { trust }) => {
    const app = factory();
    if (trust !== undefined) app.set('trust proxy', trust);
    app.get('/', (req, res) => {
      res.json({ key: extractor(req) });
    });
    return app;
  };

const koaApp =
  (factory: typeof Koa): AppFactory =>
  (extractor, { trust }) => {
    const app = new factory();
    if (typeof trust === 'number') {
      app.proxy = true;
      app.maxIpsCount = trust;
    } else if (trust === true) {
      app.proxy = true;
    }
    app.use((ctx) => {
      ctx.body = { key: extractor(ctx) };
    });
    return app.callback();
  };

const frameworks: [string, AppFactory][] = [
  ['express 5', expressApp(express)],
  ['express 4', expressApp(express4)],
  ['koa 3', koaApp(Koa)],
  ['koa 2', koaApp(Koa2)],
];

describe.each(frameworks)('keys.ip() on %s', (_name, makeApp) => {
  let logger: ReturnType<typeof recordingLogger>;
  let keys: Awaited<ReturnType<typeof freshKeys>>;

  beforeEach(async () => {
    logger = recordingLogger();
    keys = await freshKeys();
  });

  async function keysFor(app: Parameters<typeof request>[0], forwardedFor: (i: number) => string | undefined, count: number): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const call = request(app).get('/');
      const header = forwardedFor(i);
      if (header !== undefined) call.set('X-Forwarded-For', header);
      const response = await call.expect(200);
      seen.add(response.body.key);
    }
    return seen;
  }

  it('ignores a rotating X-Forwarded-For when proxies are not trusted, and warns once', async () => {
    const app = makeApp(keys.ip({ logger }), { trust: undefined });
    const seen = await keysFor(app, (i) => `198.51.100.${i}`, 100);
    expect([...seen]).toEqual(['ip:127.0.0.1']);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] ERR_RATELOCK_UNEXPECTED_X_FORWARDED_FOR: /);
  });

  it('keys the rightmost untrusted hop with one trusted proxy: spoofed leftmost entries change nothing', async () => {
    const app = makeApp(keys.ip({ logger }), { trust: 1 });
    const seen = await keysFor(app, (i) => `10.${i}.0.1, 203.0.113.50`, 100);
    expect([...seen]).toEqual(['ip:203.0.113.50']);
    expect(logger.lines).toEqual([]);
  });

  it('warns once that trusting every proxy lets clients pick their key', async () => {
    const app = makeApp(keys.ip({ logger }), { trust: true });
    const seen = await keysFor(app, (i) => `198.51.100.${i % 3}, 203.0.113.50`, 6);
    // The leftmost entry wins: this is what the warning is about.
    expect(seen.size).toBe(3);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] ERR_RATELOCK_PERMISSIVE_TRUST_PROXY: /);
  });

  it('stays silent without X-Forwarded-For and with a bounded proxy setting', async () => {
    await keysFor(makeApp(keys.ip({ logger }), { trust: undefined }), () => undefined, 3);
    await keysFor(makeApp(keys.ip({ logger }), { trust: 2 }), () => '192.0.2.1, 192.0.2.2', 3);
    expect(logger.lines).toEqual([]);
  });
});

describe('proxy warnings: defaults', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('go to console.warn, once per process across extractors and apps', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const keys = await freshKeys();
    const first = expressApp(express)(keys.ip(), { trust: undefined });
    const second = koaApp(Koa)(keys.ip({ ipv6Subnet: 64 }), { trust: undefined });
    for (const app of [first, second, first]) await request(app).get('/').set('X-Forwarded-For', '198.51.100.1').expect(200);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/^\[ratelock\] ERR_RATELOCK_UNEXPECTED_X_FORWARDED_FOR/);
  });

  it('apply to the IP fallback of key lists too', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    vi.resetModules();
    const { compileKeySpec, keys } = await import('../../src/keys/index.js');
    const resolve = compileKeySpec([keys.header('x-api-key')]);
    const app = express();
    app.set('trust proxy', true);
    app.get('/', async (req, res) => {
      res.json({ key: await resolve(req) });
    });
    const response = await request(app).get('/').set('X-Forwarded-For', '198.51.100.77').expect(200);
    expect(response.body.key).toBe('ip:198.51.100.77');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/ERR_RATELOCK_PERMISSIVE_TRUST_PROXY/);
  });

  it('send the IP fallback warnings of a compiled key spec to its logger, not to console', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    vi.resetModules();
    const { compileKeySpec, keys } = await import('../../src/keys/index.js');
    const logger = recordingLogger();
    const resolve = compileKeySpec([keys.header('x-api-key')], { logger });
    const app = express();
    app.set('trust proxy', true);
    app.get('/', (req, res) => {
      res.json({ key: resolve(req) });
    });
    const response = await request(app).get('/').set('X-Forwarded-For', '198.51.100.78').expect(200);
    expect(response.body.key).toBe('ip:198.51.100.78');
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] ERR_RATELOCK_PERMISSIVE_TRUST_PROXY/);
    expect(warn).not.toHaveBeenCalled();
  });

  it("send rateLimit()'s IP fallback warnings to the limiter's logger", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    vi.resetModules();
    const { rateLimit } = await import('../../src/adapters/express/rate-limit.js');
    const { MemoryStore } = await import('../../src/stores/memory.js');
    const logger = recordingLogger();
    const app = express();
    app.use(rateLimit({ store: new MemoryStore({ sweepIntervalMs: 0 }), limit: 5, window: '1m', key: () => undefined, logger }));
    app.get('/', (req, res) => {
      res.json({ key: req.rateLimit?.key });
    });
    const response = await request(app).get('/').set('X-Forwarded-For', '198.51.100.79').expect(200);
    expect(response.body.key).toBe('ip:127.0.0.1');
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[ratelock\] ERR_RATELOCK_UNEXPECTED_X_FORWARDED_FOR/);
    expect(warn).not.toHaveBeenCalled();
  });

  it("read an Express app's trust proxy setting once, not on every request", async () => {
    const keys = await freshKeys();
    const logger = recordingLogger();
    const app = expressApp(express)(keys.ip({ logger }), { trust: 1 }) as ReturnType<typeof express>;
    const get = vi.spyOn(app, 'get');
    for (let i = 0; i < 5; i++) await request(app).get('/').expect(200);
    expect(get.mock.calls.filter(([name]) => name === 'trust proxy')).toHaveLength(1);
  });
});
