/**
 * OpenTelemetry metrics, opt-in and without a dependency: `enableOpenTelemetry()` subscribes to
 * ratelock's diagnostics channels (src/core/metrics.ts) and records into OpenTelemetry
 * instruments. `@opentelemetry/api` (optional peer, `>=1 <2`) is imported only here, only when
 * called, and only when no `meterProvider` is given: importing ratelock never loads it, and
 * without a call nobody subscribes, so decisions build no message.
 *
 * Names follow the closest conventions: ASP.NET Core's `aspnetcore.rate_limiting.requests`
 * (counter of requests by `…policy` and `…result`) and Envoy's rate-limit stats (`over_limit`,
 * `near_limit`, `shadow_mode` are values or counters here):
 *
 * | instrument | kind, unit | attributes |
 * | --- | --- | --- |
 * | `ratelock.rate_limiting.requests` | counter, `{request}` | `ratelock.rate_limiting.result`, `ratelock.rate_limiting.policy`, `ratelock.adapter` |
 * | `ratelock.rate_limiting.near_limit` | counter, `{request}` | `ratelock.rate_limiting.policy`, `ratelock.adapter` |
 * | `ratelock.store.duration` | histogram, `s` | `ratelock.store.operation`, `ratelock.adapter`, `error.type` (failures only) |
 * | `ratelock.lock.requests` | counter, `{request}` | `ratelock.lock.mode`, `ratelock.lock.result` |
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { ConfigError, formatValue } from '../core/index.js';
import { DECISION_CHANNEL, LOCK_CHANNEL, type DecisionMessage, type LockMessage } from '../core/metrics.js';

/** Attribute values as OpenTelemetry takes them. */
export type MetricAttributes = Record<string, string | number | boolean>;

/** The part of an OpenTelemetry `Meter` ratelock uses (structural: no type dependency on the API). */
export interface MeterLike {
  createCounter(name: string, options?: { description?: string; unit?: string }): { add(value: number, attributes?: MetricAttributes): void };
  createHistogram(
    name: string,
    options?: { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): { record(value: number, attributes?: MetricAttributes): void };
}

/** The part of an OpenTelemetry `MeterProvider` ratelock uses. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): MeterLike;
}

export interface OpenTelemetryOptions {
  /** Where the instruments are created. @default the global MeterProvider of `@opentelemetry/api` */
  meterProvider?: MeterProviderLike | undefined;
  /**
   * Share of a policy's quota in use (after the request) from which an allowed decision also
   * counts in `ratelock.rate_limiting.near_limit` (Envoy's `NEAR_LIMIT_RATIO`). @default 0.8
   */
  nearLimitRatio?: number | undefined;
}

/** What `enableOpenTelemetry()` returns. */
export interface OpenTelemetryMetrics {
  /** Stops recording (unsubscribes from the channels). Idempotent. */
  disable(): void;
}

/** The meter's name (its instrumentation scope). */
export const METER_NAME = 'ratelock';

export const INSTRUMENTS = {
  requests: 'ratelock.rate_limiting.requests',
  nearLimit: 'ratelock.rate_limiting.near_limit',
  storeDuration: 'ratelock.store.duration',
  lockRequests: 'ratelock.lock.requests',
} as const;

export const ATTRIBUTES = {
  result: 'ratelock.rate_limiting.result',
  policy: 'ratelock.rate_limiting.policy',
  adapter: 'ratelock.adapter',
  operation: 'ratelock.store.operation',
  errorType: 'error.type',
  lockMode: 'ratelock.lock.mode',
  lockResult: 'ratelock.lock.result',
} as const;

const DEFAULT_NEAR_LIMIT_RATIO = 0.8;

/** Store calls take well under a ms on a healthy Redis; the `timeout` default is 250 ms. */
const DURATION_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Records every decision and `withLock` outcome into OpenTelemetry instruments (see the file
 * header) until `disable()`. Each call subscribes once more: call it once per process (or per
 * provider).
 *
 * @example
 * import { enableOpenTelemetry } from 'ratelock';
 * await enableOpenTelemetry(); // after your SDK registered its MeterProvider
 * @throws ConfigError when `@opentelemetry/api` cannot be loaded and no `meterProvider` is given, or for a bad option.
 */
export async function enableOpenTelemetry(options: OpenTelemetryOptions = {}): Promise<OpenTelemetryMetrics> {
  const ratio = options.nearLimitRatio ?? DEFAULT_NEAR_LIMIT_RATIO;
  if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1)) {
    throw new ConfigError(`nearLimitRatio must be a number in (0, 1]; got ${formatValue(options.nearLimitRatio)}`);
  }
  const provider = options.meterProvider ?? (await globalMeterProvider());
  if (provider === null || typeof provider !== 'object' || typeof provider.getMeter !== 'function') {
    throw new ConfigError(`meterProvider must be an OpenTelemetry MeterProvider; got ${formatValue(options.meterProvider)}`);
  }
  const meter = provider.getMeter(METER_NAME);
  const requests = meter.createCounter(INSTRUMENTS.requests, {
    description: 'Rate-limit decisions (consume), by outcome: allowed, limited, shadow_limited, store_error, store_timeout, blocked_by_penalty',
    unit: '{request}',
  });
  const nearLimit = meter.createCounter(INSTRUMENTS.nearLimit, {
    description: `Allowed rate-limit decisions whose policy has at least ${ratio} of its quota in use`,
    unit: '{request}',
  });
  const storeDuration = meter.createHistogram(INSTRUMENTS.storeDuration, {
    description: 'Duration of the store call(s) of a rate-limit decision, time budget included',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
  });
  const lockRequests = meter.createCounter(INSTRUMENTS.lockRequests, {
    description: 'withLock requests that asked for a lock or an idempotency record, by outcome',
    unit: '{request}',
  });

  const onDecision = (message: unknown): void => {
    const { decision, outcome, adapter, operation, durationMs } = message as DecisionMessage;
    const timing: MetricAttributes = { [ATTRIBUTES.operation]: operation, [ATTRIBUTES.adapter]: adapter };
    if (outcome === 'store_error' || outcome === 'store_timeout') timing[ATTRIBUTES.errorType] = outcome;
    storeDuration.record(durationMs / 1000, timing);
    if (operation !== 'consume') return; // a peek is a question, not a request
    const policy = decision.policy.name;
    requests.add(1, { [ATTRIBUTES.result]: outcome, [ATTRIBUTES.policy]: policy, [ATTRIBUTES.adapter]: adapter });
    if (decision.reason === 'allowed' && decision.limit - decision.remaining >= ratio * decision.limit) {
      nearLimit.add(1, { [ATTRIBUTES.policy]: policy, [ATTRIBUTES.adapter]: adapter });
    }
  };
  const onLock = (message: unknown): void => {
    const { mode, outcome } = message as LockMessage;
    lockRequests.add(1, { [ATTRIBUTES.lockMode]: mode, [ATTRIBUTES.lockResult]: outcome });
  };
  subscribe(DECISION_CHANNEL, onDecision);
  subscribe(LOCK_CHANNEL, onLock);
  let enabled = true;
  return {
    disable() {
      if (!enabled) return;
      enabled = false;
      unsubscribe(DECISION_CHANNEL, onDecision);
      unsubscribe(LOCK_CHANNEL, onLock);
    },
  };
}

/** The global MeterProvider of `@opentelemetry/api`, imported now (never at ratelock's import). */
async function globalMeterProvider(): Promise<MeterProviderLike> {
  let api: { metrics: { getMeterProvider(): MeterProviderLike } };
  try {
    api = (await import('@opentelemetry/api')) as unknown as typeof api;
  } catch (err) {
    throw new ConfigError(
      `enableOpenTelemetry() needs the optional peer dependency @opentelemetry/api (>=1 <2), or a meterProvider option: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return api.metrics.getMeterProvider();
}
