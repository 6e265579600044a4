/**
 * The OpenTelemetry bridge read through a real OpenTelemetry SDK (`@opentelemetry/sdk-metrics`,
 * a MetricReader collected on demand): decisions counted by outcome, policy and adapter, near-limit
 * decisions, store-call durations (failures carrying `error.type`), withLock outcomes, nothing
 * after `disable()`; the global-provider path; and, in a child process where
 * `@opentelemetry/api` cannot be resolved, that importing ratelock still works and only
 * `enableOpenTelemetry()` says what is missing. MemoryStores on a virtual clock.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/adapters/express/rate-limit.js';
import { withLock } from '../../src/adapters/express/with-lock.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import { enableOpenTelemetry, type OpenTelemetryMetrics } from '../../src/metrics/opentelemetry.js';
import { memoryStoreForTests } from '../../src/stores/testing.js';
import { failingStore, silentStore } from '../core/fake-stores.js';

/** A reader collected on demand, as a pull exporter (Prometheus) would. */
class OnDemandReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

type Points = DataPoint<unknown>[];

/** Every data point of `name` in one collection. */
async function pointsOf(reader: MetricReader, name: string): Promise<Points> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const points: Points = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) if (metric.descriptor.name === name) points.push(...(metric.dataPoints as Points));
  }
  return points;
}

/** Sum of counter points whose attributes include `match`. */
function total(points: Points, match: Record<string, unknown>): number {
  return points
    .filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value))
    .reduce((sum, point) => sum + (point.value as number), 0);
}

const quiet = { warn: () => undefined };

describe('OpenTelemetry metrics through an SDK MeterProvider', () => {
  let reader: OnDemandReader;
  let provider: MeterProvider;
  let enabled: OpenTelemetryMetrics;
  const clock = { now: 1_700_000_000_000 };
  const store = memoryStoreForTests({ clock: () => clock.now, sweepIntervalMs: 0 });

  beforeEach(async () => {
    reader = new OnDemandReader();
    provider = new MeterProvider({ readers: [reader] });
    enabled = await enableOpenTelemetry({ meterProvider: provider });
    clock.now += 10_000_000;
  });

  afterEach(async () => {
    enabled.disable();
    await provider.shutdown();
  });

  it('counts decisions by outcome, policy and adapter, and those near their limit (Envoy near_limit, 0.8)', async () => {
    const app = express();
    app.use('/limited', rateLimit({ store, limit: 5, window: '1m', key: () => 'k' }));
    app.use('/shadow', rateLimit({ store, limit: 1, window: '1m', key: () => 'k', mode: 'shadow', prefix: 'shadow:' }));
    app.use('/down', rateLimit({ store: failingStore(), limit: 5, window: '1m', logger: quiet }));
    app.use('/slow', rateLimit({ store: silentStore(), limit: 5, window: '1m', timeout: 20, logger: quiet }));
    app.use((_req, res) => void res.send('ok'));
    for (let i = 0; i < 6; i++) await request(app).get('/limited');
    for (let i = 0; i < 3; i++) await request(app).get('/shadow');
    await request(app).get('/down');
    await request(app).get('/slow');
    const core = new RateLimiter({ store, limit: 2, window: '1s', prefix: 'core:' });
    await core.consume('c');
    await core.peek('c');

    const requests = await pointsOf(reader, 'ratelock.rate_limiting.requests');
    const by = (result: string, policy: string, adapter = 'express') =>
      total(requests, { 'ratelock.rate_limiting.result': result, 'ratelock.rate_limiting.policy': policy, 'ratelock.adapter': adapter });
    expect(by('allowed', '5-in-1m')).toBe(5); // /down and /slow fail open: they count as store failures, below
    expect(by('limited', '5-in-1m')).toBe(1);
    expect(by('allowed', '1-in-1m')).toBe(1);
    expect(by('shadow_limited', '1-in-1m')).toBe(2);
    expect(total(requests, { 'ratelock.rate_limiting.result': 'store_error' })).toBe(1);
    expect(total(requests, { 'ratelock.rate_limiting.result': 'store_timeout' })).toBe(1);
    expect(by('allowed', '2-in-1s', 'core')).toBe(1); // the peek is not a request
    expect(total(requests, {})).toBe(6 + 3 + 2 + 1);

    const near = await pointsOf(reader, 'ratelock.rate_limiting.near_limit');
    // 5 per minute: the 4th and 5th allowed requests leave 1 and 0 (4 and 5 of 5 in use).
    expect(total(near, { 'ratelock.rate_limiting.policy': '5-in-1m', 'ratelock.adapter': 'express' })).toBe(2);
    // 1 per minute (shadow): its one allowed request uses the whole quota.
    expect(total(near, { 'ratelock.rate_limiting.policy': '1-in-1m' })).toBe(1);

    const durations = (await pointsOf(reader, 'ratelock.store.duration')) as DataPoint<Histogram>[];
    const count = (match: Record<string, unknown>) =>
      durations.filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value)).reduce((sum, point) => sum + point.value.count, 0);
    expect(count({ 'ratelock.store.operation': 'consume', 'ratelock.adapter': 'express' })).toBe(11);
    expect(count({ 'ratelock.store.operation': 'peek', 'ratelock.adapter': 'core' })).toBe(1);
    expect(count({ 'error.type': 'store_timeout' })).toBe(1);
    expect(count({ 'error.type': 'store_error' })).toBe(1);
    const timedOut = durations.find((point) => point.attributes['error.type'] === 'store_timeout')!;
    expect(timedOut.value.min).toBeGreaterThanOrEqual(0.015); // the 20 ms budget, in seconds
    expect(timedOut.value.max).toBeLessThan(1);
  });

  it('counts withLock outcomes by mode (lock / replay) and result', async () => {
    const app = express();
    app.use(express.json());
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const holding = new Promise<void>((resolve) => (entered = resolve));
    app.post('/lock', withLock({ store, key: () => 'job' }), async (_req, res) => {
      entered();
      await held;
      res.send('done');
    });
    app.post('/pay', withLock({ store, replay: { ttl: '1h' } }), (req, res) => void res.status(201).json({ paid: req.body.amount }));

    const first = request(app).post('/lock').then((response) => response.status);
    await holding; // the first request holds the lock
    expect((await request(app).post('/lock')).status).toBe(409);
    release();
    expect(await first).toBe(200);
    expect((await request(app).post('/pay').set('Idempotency-Key', '"k1"').send({ amount: 5 })).status).toBe(201);
    expect((await request(app).post('/pay').set('Idempotency-Key', '"k1"').send({ amount: 5 })).status).toBe(201);
    expect((await request(app).post('/pay').set('Idempotency-Key', '"k1"').send({ amount: 6 })).status).toBe(422);
    expect((await request(app).post('/pay').send({ amount: 5 })).status).toBe(400);

    const points = await pointsOf(reader, 'ratelock.lock.requests');
    const by = (mode: string, result: string) => total(points, { 'ratelock.lock.mode': mode, 'ratelock.lock.result': result });
    expect([by('lock', 'acquired'), by('lock', 'busy')]).toEqual([1, 1]);
    expect([by('replay', 'acquired'), by('replay', 'replayed'), by('replay', 'mismatch'), by('replay', 'no_key')]).toEqual([1, 1, 1, 1]);
    expect(total(points, {})).toBe(6);
  });

  it('records nothing after disable()', async () => {
    const limiter = new RateLimiter({ store, limit: 1, window: '1m', prefix: 'off:' });
    await limiter.consume('a');
    enabled.disable();
    enabled.disable();
    await limiter.consume('a');
    expect(total(await pointsOf(reader, 'ratelock.rate_limiting.requests'), {})).toBe(1);
  });

  it('rejects a bad nearLimitRatio or meterProvider', async () => {
    await expect(enableOpenTelemetry({ meterProvider: provider, nearLimitRatio: 0 })).rejects.toThrow('nearLimitRatio must be a number in (0, 1]');
    await expect(enableOpenTelemetry({ meterProvider: {} as never })).rejects.toThrow('meterProvider must be an OpenTelemetry MeterProvider');
  });
});

describe('OpenTelemetry metrics through the global MeterProvider (@opentelemetry/api imported on demand)', () => {
  it('uses metrics.getMeterProvider() when no meterProvider is given', async () => {
    const reader = new OnDemandReader();
    const provider = new MeterProvider({ readers: [reader] });
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    const enabled = await enableOpenTelemetry();
    try {
      const limiter = new RateLimiter({ store: memoryStoreForTests({ sweepIntervalMs: 0 }), limit: 1, window: '1m', prefix: 'global:' });
      await limiter.consume('a');
      await limiter.consume('a');
      const requests = await pointsOf(reader, 'ratelock.rate_limiting.requests');
      expect(total(requests, { 'ratelock.rate_limiting.result': 'limited', 'ratelock.adapter': 'core' })).toBe(1);
    } finally {
      enabled.disable();
      metrics.disable();
      await provider.shutdown();
    }
  });
});

describe('without @opentelemetry/api', () => {
  it('importing ratelock works; enableOpenTelemetry() rejects naming the missing peer; a meterProvider needs no API', async () => {
    // A resolve hook that makes @opentelemetry/api absent, as when the optional peer is not installed.
    const hook = `export async function resolve(specifier, context, next) {
      if (specifier === '@opentelemetry/api' || specifier.startsWith('@opentelemetry/')) throw Object.assign(new Error('Cannot find package ' + specifier), { code: 'ERR_MODULE_NOT_FOUND' });
      return next(specifier, context);
    }`;
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
      const ratelock = await import('./src/index.ts');
      const limiter = new ratelock.RateLimiter({ limit: 1, window: '1m' });
      const decision = await limiter.consume('k');
      let message = 'resolved';
      try { await ratelock.enableOpenTelemetry(); } catch (err) { message = err.name + ': ' + err.message; }
      const counted = [];
      const provider = { getMeter: () => ({ createCounter: (name) => ({ add: (n) => counted.push(name) }), createHistogram: () => ({ record: () => undefined }) }) };
      const enabled = await ratelock.enableOpenTelemetry({ meterProvider: provider });
      await limiter.consume('k2');
      enabled.disable();
      console.log(JSON.stringify({ allowed: decision.allowed, message, counted }));
    `;
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './examples/support/register-lua-text.mjs', '--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.allowed).toBe(true);
    expect(result.message).toMatch(/^ConfigError: enableOpenTelemetry\(\) needs the optional peer dependency @opentelemetry\/api/);
    expect(result.counted).toEqual(['ratelock.rate_limiting.requests', 'ratelock.rate_limiting.near_limit']);
  });
});
