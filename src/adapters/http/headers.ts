/**
 * Rate-limit response headers, one small writer per mode. Writers only translate a Decision.
 *
 * The constant parts (quoted names, `q=`/`w=` items, whole `RateLimit-Policy` values) of static
 * limits are built once at construction (`precomputeHeaderStrings`), so a request only formats
 * `remaining` and `reset`. Policies made per request (a `limit(req)` function) are formatted from
 * their static parts (the quoted name, kept per name) and never cached themselves.
 *
 * Times are whole seconds rounded up (a client that waits the advertised time is never early).
 * "Reset" means: when allowed, seconds until the deciding policy's full quota is back (its log is
 * empty); when blocked, seconds until the request could pass (= Retry-After), because the draft
 * forbids a Retry-After earlier than the end of `t`.
 */

/** `'draft-8'`: `RateLimit` + `RateLimit-Policy` as structured fields (draft-ietf-httpapi-ratelimit-headers-08 and later). */
export type HeaderMode = 'draft-8' | 'draft-7' | 'draft-6' | 'legacy';

/**
 * Sets one response header. Adapters pass a module-level function (e.g. `res.setHeader`) so that
 * writing headers creates no closure per request.
 */
export type SetHeader<Target> = (target: Target, name: string, value: string) => void;

export type HeaderWriter = <Target>(target: Target, set: SetHeader<Target>, decision: Decision) => void;

/** The constant parts of one static policy's headers. */
interface PolicyStrings {
  /** `"<name>"` as an RFC 8941 sf-string. */
  readonly sfName: string;
  /** draft-8 `RateLimit-Policy` item: `"<name>";q=<limit>;w=<window s>`. */
  readonly structuredItem: string;
  /** draft-6/7 `RateLimit-Policy` item: `<limit>;w=<window s>`. */
  readonly plainItem: string;
  readonly limit: string;
}

/** The `RateLimit-Policy` values of one static policy list. */
interface ListStrings {
  readonly structured: string;
  readonly plain: string;
}

const policyStrings = new WeakMap<Policy, PolicyStrings>();
const policyListStrings = new WeakMap<readonly Policy[], ListStrings>();

/** sf-strings of the names of per-request policies. Names come from configuration, so this stays small; the cap is a safety net. */
const sfNames = new Map<string, string>();
const MAX_CACHED_SF_NAMES = 1_000;

/** Whole seconds, rounded up, never below `min`. */
export function toSeconds(ms: number, min = 0): number {
  const seconds = Math.ceil(ms / 1000);
  return seconds > min ? seconds : min;
}

/** `Retry-After` of a refused request: whole seconds rounded up, ≥ 1. */
export function retryAfterSeconds(decision: Decision): number {
  return toSeconds(decision.retryAfterMs, 1);
}

/** Seconds until the deciding policy resets (see the file comment for the blocked case). */
export function resetSeconds(decision: Decision): number {
  return decision.allowed ? toSeconds(decision.resetMs) : retryAfterSeconds(decision);
}

/**
 * Quotes a policy name as an sf-string: escapes `\` and `"`, and replaces characters outside
 * printable ASCII (which an sf-string cannot carry) with `?`.
 */
export function toSfString(value: string): string {
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === '\\') out += `\\${char}`;
    else out += code >= 0x20 && code <= 0x7e ? char : '?';
  }
  return `${out}"`;
}

function sfNameOf(policy: Policy): string {
  const cached = policyStrings.get(policy)?.sfName ?? sfNames.get(policy.name);
  if (cached !== undefined) return cached;
  const sfName = toSfString(policy.name);
  if (sfNames.size < MAX_CACHED_SF_NAMES) sfNames.set(policy.name, sfName);
  return sfName;
}

function structuredItem(policy: Policy): string {
  return policyStrings.get(policy)?.structuredItem ?? `${sfNameOf(policy)};q=${policy.limit};w=${toSeconds(policy.windowMs, 1)}`;
}

function plainItem(policy: Policy): string {
  return policyStrings.get(policy)?.plainItem ?? `${policy.limit};w=${toSeconds(policy.windowMs, 1)}`;
}

function limitText(policy: Policy): string {
  return policyStrings.get(policy)?.limit ?? String(policy.limit);
}

/** The `RateLimit-Policy` value of `policies`: built once for a precomputed list, else from its items. */
function policyHeader(policies: readonly Policy[], structured: boolean): string {
  const cached = policyListStrings.get(policies);
  if (cached !== undefined) return structured ? cached.structured : cached.plain;
  let value = '';
  for (const policy of policies) {
    const item = structured ? structuredItem(policy) : plainItem(policy);
    value = value === '' ? item : `${value}, ${item}`;
  }
  return value;
}

/**
 * Builds the header strings of these static policies and of the list itself, once (call it at
 * construction for every policy list a decision can carry), so that requests find them cached.
 */
export function precomputeHeaderStrings(policies: readonly Policy[]): void {
  if (policyListStrings.has(policies)) return;
  for (const policy of policies) {
    if (policyStrings.has(policy)) continue;
    const sfName = toSfString(policy.name);
    const windowSeconds = toSeconds(policy.windowMs, 1);
    policyStrings.set(policy, {
      sfName,
      structuredItem: `${sfName};q=${policy.limit};w=${windowSeconds}`,
      plainItem: `${policy.limit};w=${windowSeconds}`,
      limit: String(policy.limit),
    });
  }
  policyListStrings.set(policies, { structured: policyHeader(policies, true), plain: policyHeader(policies, false) });
}

/** `RateLimit-Policy: "100-in-1m";q=100;w=60, "hourly";q=1000;w=3600` and `RateLimit: "100-in-1m";r=99;t=60`. */
function writeDraft8<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'RateLimit-Policy', policyHeader(decision.policies, true));
  set(target, 'RateLimit', `${sfNameOf(decision.policy)};r=${decision.remaining};t=${resetSeconds(decision)}`);
}

/** `RateLimit-Policy: 100;w=60` and `RateLimit: limit=100, remaining=99, reset=60`. */
function writeDraft7<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'RateLimit-Policy', policyHeader(decision.policies, false));
  set(target, 'RateLimit', `limit=${limitText(decision.policy)}, remaining=${decision.remaining}, reset=${resetSeconds(decision)}`);
}

/** `RateLimit-Policy`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds). */
function writeDraft6<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'RateLimit-Policy', policyHeader(decision.policies, false));
  set(target, 'RateLimit-Limit', limitText(decision.policy));
  set(target, 'RateLimit-Remaining', String(decision.remaining));
  set(target, 'RateLimit-Reset', String(resetSeconds(decision)));
}

/** `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds until reset, not a timestamp). */
function writeLegacy<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'X-RateLimit-Limit', limitText(decision.policy));
  set(target, 'X-RateLimit-Remaining', String(decision.remaining));
  set(target, 'X-RateLimit-Reset', String(resetSeconds(decision)));
}

const WRITERS: Readonly<Record<HeaderMode, HeaderWriter>> = {
  'draft-8': writeDraft8,
  'draft-7': writeDraft7,
  'draft-6': writeDraft6,
  legacy: writeLegacy,
};

/** Every header mode, in the order error messages list them. */
export const HEADER_MODES = Object.keys(WRITERS) as readonly HeaderMode[];

/** The writer of a mode (already validated by the options parser). */
export function headerWriter(mode: HeaderMode): HeaderWriter {
  return WRITERS[mode];
}
import type { Decision, Policy } from '../../core/index.js';
