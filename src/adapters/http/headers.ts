/**
 * Rate-limit response headers, one small writer per mode. Writers only translate a Decision; the
 * per-policy constant parts (quoted names, `q=`/`w=` items) are built once per Policy object and
 * cached, so the hot path only formats `remaining` and `reset`.
 *
 * Times are whole seconds rounded up (a client that waits the advertised time is never early).
 * "Reset" means: when allowed, seconds until the deciding policy's full quota is back (its log is
 * empty); when blocked, seconds until the request could pass (= Retry-After), because the draft
 * forbids a Retry-After earlier than the end of `t`.
 */
import type { Decision, Policy } from '../../core/decision.js';

/** `'draft-8'`: `RateLimit` + `RateLimit-Policy` as structured fields (draft-ietf-httpapi-ratelimit-headers-08 and later). */
export type HeaderMode = 'draft-8' | 'draft-7' | 'draft-6' | 'legacy';

export const HEADER_MODES: readonly HeaderMode[] = ['draft-8', 'draft-7', 'draft-6', 'legacy'];

/**
 * Sets one response header. Adapters pass a module-level function (e.g. `res.setHeader`) so that
 * writing headers creates no closure per request.
 */
export type SetHeader<Target> = (target: Target, name: string, value: string) => void;

export type HeaderWriter = <Target>(target: Target, set: SetHeader<Target>, decision: Decision) => void;

/** The constant parts of one policy's headers. */
interface PolicyStrings {
  /** `"<name>"` as an RFC 8941 sf-string. */
  readonly sfName: string;
  /** draft-8 `RateLimit-Policy` item: `"<name>";q=<limit>;w=<window s>`. */
  readonly structuredItem: string;
  /** draft-6/7 `RateLimit-Policy` item: `<limit>;w=<window s>`. */
  readonly plainItem: string;
  readonly limit: string;
}

const policyStrings = new WeakMap<Policy, PolicyStrings>();
const policyListStrings = new WeakMap<readonly Policy[], { structured: string; plain: string }>();

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

function stringsOf(policy: Policy): PolicyStrings {
  let strings = policyStrings.get(policy);
  if (strings === undefined) {
    const sfName = toSfString(policy.name);
    const windowSeconds = toSeconds(policy.windowMs, 1);
    strings = {
      sfName,
      structuredItem: `${sfName};q=${policy.limit};w=${windowSeconds}`,
      plainItem: `${policy.limit};w=${windowSeconds}`,
      limit: String(policy.limit),
    };
    policyStrings.set(policy, strings);
  }
  return strings;
}

function listStringsOf(policies: readonly Policy[]): { structured: string; plain: string } {
  let strings = policyListStrings.get(policies);
  if (strings === undefined) {
    let structured = '';
    let plain = '';
    for (const policy of policies) {
      const item = stringsOf(policy);
      structured += structured === '' ? item.structuredItem : `, ${item.structuredItem}`;
      plain += plain === '' ? item.plainItem : `, ${item.plainItem}`;
    }
    strings = { structured, plain };
    policyListStrings.set(policies, strings);
  }
  return strings;
}

/**
 * Builds the header strings of these policies now (call at construction for static limits), so
 * that requests find them cached. Writers also build them on first use.
 */
export function precomputeHeaderStrings(policies: readonly Policy[]): void {
  listStringsOf(policies);
}

/** `RateLimit-Policy: "1m";q=100;w=60, "1h";q=1000;w=3600` and `RateLimit: "1m";r=99;t=60`. */
function writeDraft8<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'RateLimit-Policy', listStringsOf(decision.policies).structured);
  set(target, 'RateLimit', `${stringsOf(decision.policy).sfName};r=${decision.remaining};t=${resetSeconds(decision)}`);
}

/** `RateLimit-Policy: 100;w=60` and `RateLimit: limit=100, remaining=99, reset=60`. */
function writeDraft7<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'RateLimit-Policy', listStringsOf(decision.policies).plain);
  set(target, 'RateLimit', `limit=${stringsOf(decision.policy).limit}, remaining=${decision.remaining}, reset=${resetSeconds(decision)}`);
}

/** `RateLimit-Policy`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds). */
function writeDraft6<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'RateLimit-Policy', listStringsOf(decision.policies).plain);
  set(target, 'RateLimit-Limit', stringsOf(decision.policy).limit);
  set(target, 'RateLimit-Remaining', String(decision.remaining));
  set(target, 'RateLimit-Reset', String(resetSeconds(decision)));
}

/** `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds until reset, not a timestamp). */
function writeLegacy<Target>(target: Target, set: SetHeader<Target>, decision: Decision): void {
  set(target, 'X-RateLimit-Limit', stringsOf(decision.policy).limit);
  set(target, 'X-RateLimit-Remaining', String(decision.remaining));
  set(target, 'X-RateLimit-Reset', String(resetSeconds(decision)));
}

const WRITERS: Readonly<Record<HeaderMode, HeaderWriter>> = {
  'draft-8': writeDraft8,
  'draft-7': writeDraft7,
  'draft-6': writeDraft6,
  legacy: writeLegacy,
};

/** The writer of a mode (already validated by the options parser). */
export function headerWriter(mode: HeaderMode): HeaderWriter {
  return WRITERS[mode];
}
