/**
 * Store key names: the ONE place that lays out every key ratelock writes. Every key of one store
 * call shares one hash tag that ratelock owns: the tag is a digest of the caller's id, so no id
 * (`''`, `}{`, `{x}y`, 100 kB) can split a call across Redis Cluster slots, steer its slot, or make
 * a key longer than ~100 bytes.
 *
 * | key | layout |
 * | --- | --- |
 * | a limit's log (or GCRA state) | `<prefix>{<digest of id>}:<limit name>` |
 * | a penalty box | `<prefix>{<digest of id>}!box` (`!` is never in a limit name) |
 * | a lock, its fence | `<prefix>{<digest>}`, `<prefix>{<digest>}:fence` |
 * | an idempotency record, its fence | the same, under the idempotency prefix |
 */
import { createHash } from 'node:crypto';
import { ConfigError } from './errors.js';
import { formatValue } from './duration.js';
import type { Policy } from './decision.js';
import type { PenaltyBoxSettings } from './limits.js';
import type { IdempotencyKeys, LockKeys, StoreLimit } from './store.js';

/** Longest accepted `prefix`, so that every key stays well under 200 bytes. */
export const MAX_PREFIX_LENGTH = 64;
const PREFIX_PATTERN = /^[\x21-\x7a\x7c\x7e]*$/; // printable ASCII without space, '{' and '}'

/**
 * Digests of recent ids: a SHA-256 costs ~1.5 µs, a Map hit ~0.1 µs, and a limiter sees the same
 * clients again and again. Bounded: when full it starts over (no LRU bookkeeping on the hot path);
 * ~100 bytes per entry, so at most ~1.6 MB.
 */
const DIGEST_CACHE_SIZE = 16_384;
/** Ids longer than this are hashed every time: caching them would let one client fill memory. */
const MAX_CACHED_ID_LENGTH = 256;
let digests = new Map<string, string>();

/** 22 base64url characters of SHA-256 (132 bits): collision-free in practice, never contains braces. */
export function digest(id: string): string {
  let value = digests.get(id);
  if (value !== undefined) return value;
  value = createHash('sha256').update(id).digest('base64url').slice(0, 22);
  if (id.length <= MAX_CACHED_ID_LENGTH) {
    if (digests.size >= DIGEST_CACHE_SIZE) digests = new Map();
    digests.set(id, value);
  }
  return value;
}

/** Throws a ConfigError unless `prefix` is short printable ASCII without braces or spaces. */
export function validatePrefix(prefix: unknown, option = 'prefix'): string {
  if (typeof prefix !== 'string' || prefix.length > MAX_PREFIX_LENGTH || !PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(
      `${option} must be a string of at most ${MAX_PREFIX_LENGTH} printable ASCII characters without spaces, '{' or '}'; got ${formatValue(prefix)}`,
    );
  }
  return prefix;
}

/** The hash-tagged part shared by all keys of one id: `<prefix>{<digest>}`. */
function taggedBase(prefix: string, id: string): string {
  return `${prefix}{${digest(id)}}`;
}

/** One client id and the limits that apply to it (a route rule's, or a limiter's own). */
export interface LimitPart {
  readonly id: string;
  /** Key prefix of this part's logs (a route rule has its own). */
  readonly prefix: string;
  readonly policies: readonly Policy[];
  /** Units the request takes on this part's limits (a route rule's own cost), integer ≥ 1, already validated. @default the call's cost */
  readonly cost?: number | undefined;
  /** Decided in shadow mode (a limiter or route rule with `mode: 'shadow'`): recorded, never enforced. */
  readonly shadow?: boolean | undefined;
  /** The part's penalty box (`block` option). */
  readonly block?: PenaltyBoxSettings | undefined;
}

/**
 * The store limits of every part, in order, each with its part's own cost when it has one: the
 * key of each limit's log, as consume, peek, refund and reset all use it. Each id is hashed once,
 * also when consecutive parts share it (route rules with the same key spec). The parts' penalty
 * boxes follow every policy's limit, in part order, so index i < policies < boxes maps to policy i.
 */
export function storeLimits(parts: readonly LimitPart[]): readonly StoreLimit[] {
  const part = parts[0];
  if (parts.length === 1 && part!.cost === undefined) return recentLimitsOf(part!);
  return buildLimits(parts);
}

/**
 * The store limits of one part with the call's cost (every `RateLimiter` call, every `rateLimit`
 * request): a Map hit on the id instead of building the keys and hashing them again in the store
 * (a fresh key string is hashed on every Map or Redis lookup; a cached one keeps its hash).
 * Cached per policies array, for ids seen lately; bounded like the digests (cleared when full).
 * The arrays are shared, so nothing may change them (typed readonly).
 */
interface RecentLimits {
  readonly prefix: string;
  readonly block: PenaltyBoxSettings | undefined;
  byId: Map<string, readonly StoreLimit[]>;
}
const recentLimits = new WeakMap<readonly Policy[], RecentLimits>();
/** Per policies array: ~170 bytes per id with one limit, so at most ~2.8 MB. */
const RECENT_LIMITS_SIZE = 16_384;

function recentLimitsOf(part: LimitPart): readonly StoreLimit[] {
  let recent = recentLimits.get(part.policies);
  if (recent === undefined || recent.prefix !== part.prefix || recent.block !== part.block) {
    recent = { prefix: part.prefix, block: part.block, byId: new Map() };
    recentLimits.set(part.policies, recent);
  }
  let limits = recent.byId.get(part.id);
  if (limits !== undefined) return limits;
  limits = buildLimits([part]);
  if (part.id.length <= MAX_CACHED_ID_LENGTH) {
    if (recent.byId.size >= RECENT_LIMITS_SIZE) recent.byId = new Map();
    recent.byId.set(part.id, limits);
  }
  return limits;
}

function buildLimits(parts: readonly LimitPart[]): StoreLimit[] {
  const limits: StoreLimit[] = [];
  let hashedId: string | undefined;
  let tag = '';
  let boxes: StoreLimit[] | undefined;
  for (const part of parts) {
    if (part.id !== hashedId) {
      hashedId = part.id;
      tag = `{${digest(part.id)}}`;
    }
    const base = part.prefix + tag;
    const { cost } = part;
    let longestWindow = 0;
    for (const policy of part.policies) {
      const { name, windowMs, limit } = policy;
      const key = `${base}:${name}`;
      if (windowMs > longestWindow) longestWindow = windowMs;
      // No `cost` or algorithm fields at all without them, so plain calls keep one object shape.
      if (policy.algorithm === 'gcra') limits.push({ key, windowMs, limit, cost, algorithm: 'gcra', burst: policy.burst });
      else limits.push(cost === undefined ? { key, windowMs, limit } : { key, windowMs, limit, cost });
    }
    // Strikes are remembered for the part's longest window: a client refused again within it keeps counting.
    if (part.block !== undefined) {
      (boxes ??= []).push({ key: `${base}!box`, windowMs: longestWindow, limit: part.block.after, algorithm: 'penalty-box', blockMs: part.block.blockMs });
    }
  }
  if (boxes !== undefined) limits.push(...boxes);
  return limits;
}

export function lockKeys(prefix: string, id: string): LockKeys {
  const base = taggedBase(prefix, id);
  return { lock: base, fence: `${base}:fence` };
}

export function idempotencyKeys(prefix: string, id: string): IdempotencyKeys {
  const base = taggedBase(prefix, id);
  return { record: base, fence: `${base}:fence` };
}
