/**
 * The rate limiter without HTTP: `new RateLimiter({ store, limits })`, then `consume(key)`,
 * `peek(key, { cost })`, `reset(key)`, `refund(decision)`. Options are parsed and validated once, here.
 */
import { ConfigError, type StoreError, type StoreTimeoutError } from './errors.js';
import { DEFAULTS } from './defaults.js';
import { formatValue, parseDuration, type Duration } from './duration.js';
import { decide, refund, type LimitPart, type StoreCallOptions } from './decide.js';
import { limitKey, validatePrefix } from './store-keys.js';
import { claimLogs, resolveLimits, staticPolicies, validateCost, type LimitDefinition } from './limits.js';
import { rejectUnknownOptions, validateLogger, validateOnStoreError, validateStore } from './options.js';
import { callStore, type FailureMode, type Logger } from './store-call.js';
import type { Decision, Policy } from './decision.js';
import type { Store } from './store.js';
import { getDefaultStore } from '../stores/default-store.js';

// The option checks moved to ./options.js; re-exported for modules that import them from here.
export { validateLogger, validateOnStoreError, validateStore } from './options.js';

export interface RateLimiterOptions {
  /** Where the logs live. @default the process-wide MemoryStore (`getDefaultStore()`) */
  store?: Store | undefined;
  /** Quota per `window` (cost units), integer 1–1e9. Use with `window`, or use `limits`. Its log is named `<limit>-in-<window>` (`'100-in-1m'`). */
  limit?: number | undefined;
  /** Window length: ms, or a string such as `'15m'`. */
  window?: Duration | undefined;
  /** Several limits, all checked and recorded in one atomic call. Names default to `<limit>-in-<window>` (`'100-in-1m'`). */
  limits?: LimitDefinition[] | undefined;
  /** Prefix of every store key. @default DEFAULTS.prefix (`'rl:'`) */
  prefix?: string | undefined;
  /** ms budget of one store call. @default DEFAULTS.timeoutMs (250) */
  timeout?: Duration | undefined;
  /** On store failure or timeout: allow (`'open'`) or refuse (`'closed'`). @default 'open' */
  onStoreError?: FailureMode | ((err: StoreError | StoreTimeoutError) => FailureMode) | undefined;
  /** Receives the once-per-outage messages. @default console */
  logger?: Logger | undefined;
}

export interface ConsumeOptions {
  /** Cost units this call takes, integer 1–10 000 (`MAX_COST`). A cost above a limit is always blocked (retryAfterMs = its window). @default 1 */
  cost?: number | undefined;
}

const OPTIONS: Record<keyof RateLimiterOptions, true> = {
  store: true,
  limit: true,
  window: true,
  limits: true,
  prefix: true,
  timeout: true,
  onStoreError: true,
  logger: true,
};
const OPTION_NAMES: readonly string[] = Object.keys(OPTIONS);
const CONSUME_OPTIONS: Record<keyof ConsumeOptions, true> = { cost: true };
const CONSUME_OPTION_NAMES: readonly string[] = Object.keys(CONSUME_OPTIONS);

/**
 * Exact sliding-window rate limiter (sliding log) over any Store.
 *
 * @example
 * const limiter = new RateLimiter({ store, limits: [{ limit: 10, window: '1s' }, { limit: 500, window: '1h' }] });
 * const decision = await limiter.consume(`user:${id}`);
 * if (!decision.allowed) throw new TooBusy(decision.retryAfterMs);
 */
export class RateLimiter {
  /** The limits every key is checked against, in the order given. */
  readonly policies: readonly Policy[];
  readonly prefix: string;
  readonly #callOptions: StoreCallOptions;

  constructor(options: RateLimiterOptions) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new ConfigError(`RateLimiter options must be an object like { limit: 100, window: '1m' }; got ${formatValue(options)}`);
    }
    rejectUnknownOptions(options, OPTION_NAMES, 'RateLimiter');
    // Without a request there is nothing to compute a function limit from: resolveLimits refuses it.
    const limits = resolveLimits(options, '');
    this.policies = staticPolicies(limits)!;
    this.prefix = validatePrefix(options.prefix ?? DEFAULTS.prefix, 'prefix');
    this.#callOptions = {
      store: validateStore(options.store) ?? getDefaultStore(),
      timeoutMs: parseDuration(options.timeout ?? DEFAULTS.timeoutMs, 'timeout'),
      logger: validateLogger(options.logger) ?? console,
      onStoreError: validateOnStoreError(options.onStoreError) ?? DEFAULTS.limiterOnStoreError,
      refundable: true,
    };
    claimLogs(this.#callOptions.store, this.prefix, limits, this.#callOptions.logger);
  }

  /** Takes `cost` (default 1) from every limit of `key` if all have room, else nothing. Never rejects on store failure. */
  async consume(key: string, options?: ConsumeOptions): Promise<Decision> {
    validateKey(key);
    return decide([this.#part(key)], costOption(options, 'consume()'), 'consume', this.#callOptions);
  }

  /**
   * What a request of `cost` (default 1) would get now, recording nothing: `allowed`, and
   * `remaining` as it would be after such a request.
   */
  async peek(key: string, options?: ConsumeOptions): Promise<Decision> {
    validateKey(key);
    return decide([this.#part(key)], costOption(options, 'peek()'), 'peek', this.#callOptions);
  }

  /** Deletes every limit's log for `key` (full quota again). Rejects with StoreError / StoreTimeoutError. */
  async reset(key: string): Promise<void> {
    validateKey(key);
    const { store, timeoutMs, logger } = this.#callOptions;
    const keys = this.policies.map((policy) => limitKey(this.prefix, key, policy.name));
    await callStore(store, () => store.reset(keys), { timeoutMs, logger });
  }

  /** Gives back exactly what `decision` (from this limiter's `consume`) recorded; a no-op otherwise. Never rejects on store failure. */
  async refund(decision: Decision): Promise<void> {
    return refund(decision, this.#callOptions);
  }

  #part(id: string): LimitPart {
    return { id, prefix: this.prefix, policies: this.policies };
  }
}

function validateKey(key: unknown): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ConfigError(`key must be a non-empty string (e.g. 'user:42'); got ${formatValue(key)}`);
  }
}

/** The validated `cost` of consume/peek options (default 1). */
function costOption(options: ConsumeOptions | undefined, method: string): number {
  if (options === undefined) return 1;
  if (options === null || typeof options !== 'object') throw new ConfigError(`${method} options must be an object like { cost: 2 }; got ${formatValue(options)}`);
  rejectUnknownOptions(options, CONSUME_OPTION_NAMES, method);
  return options.cost === undefined ? 1 : validateCost(options.cost, 'cost');
}
