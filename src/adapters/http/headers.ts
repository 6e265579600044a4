/**
 * Rate-limit response headers, one small writer per mode. Writers only translate a Decision.
 *
 * | mode | follows | fields |
 * | --- | --- | --- |
 * | `'draft-10'` (default) | draft-ietf-httpapi-ratelimit-headers-10 | `RateLimit-Policy: "name";q=;w=[;qu=]`, `RateLimit: "name";r=[;t=][;pk=]`; `t` = seconds until ONE more unit is available |
 * | `'draft-8'` | draft-ietf-httpapi-ratelimit-headers-08 | the same fields; `t` = seconds until the policy's quota resets (its log is empty), = Retry-After when refused |
 * | `'draft-7'`, `'draft-6'` | -07 / -06 (as express-rate-limit names them) | `RateLimit: limit=, remaining=, reset=` / `RateLimit-Limit`, `-Remaining`, `-Reset` |
 * | `'legacy'` | de facto | `X-RateLimit-Limit`, `-Remaining`, `-Reset` |
 *
 * The constant parts (quoted names, `q=`/`w=` items, whole `RateLimit-Policy` values) of static
 * limits are built once at construction (`precomputeHeaderStrings`), so a request only formats
 * `remaining` and `reset`. Policies made per request (a `limit(req)` function) are formatted from
 * their static parts (the quoted name, kept per name) and never cached themselves.
 *
 * Times are whole seconds rounded up (a client that waits the advertised time is never early).
 * draft-8 "reset" is: when allowed, seconds until the deciding policy's full quota is back (its
 * log is empty); when blocked, seconds until the request could pass (= Retry-After), as -08 asks
 * `t` and Retry-After to name the same moment. draft-10 `t` is the time until additional quota is
 * made available (`decision.nextQuotaMs`): on a sliding log, until its oldest entry ages out; it
 * is omitted when nothing is waiting to free (an empty log), as the draft's examples do without a
 * reset. Retry-After, until the refused cost fits, is never earlier than `t` (-10 §6).
 *
 * Options of the `'draft-10'` and `'draft-8'` modes (both drafts define them):
 * - `partitionKey`: `pk`, a Byte Sequence, on the `RateLimit` item: the first 16 bytes of
 *   SHA-256 of the decision's key (HMAC-SHA-256 with `{ secret }`), never the key itself. Only on
 *   `RateLimit`, which names the deciding policy whose key is known; `RateLimit-Policy` stays the
 *   same for every client, as the draft expects of it.
 * - `quotaUnit`: `qu` on every `RateLimit-Policy` item when it is not the default `"requests"`.
 *
 * Shadow decisions write nothing (a shadow limit has no effect a client can see); a request that
 * also met enforced limits gets the headers of `decision.enforced`. A decision made without the
 * store (`error`) writes nothing either: nothing is known.
 */
import { createHash, createHmac } from 'node:crypto';
import { ConfigError, formatValue, readOptions, type Decision, type Policy } from '../../core/index.js';

/** Response header modes; `'draft-10'` and `'draft-8'` write `RateLimit` + `RateLimit-Policy` as Structured Fields. */
export type HeaderMode = 'draft-10' | 'draft-8' | 'draft-7' | 'draft-6' | 'legacy';

/** `qu` values ratelock can mean: quota counted in requests (weighted by `cost`), or in content bytes (a `cost` that counts bytes). */
export type QuotaUnit = 'requests' | 'content-bytes';

/**
 * `partitionKey` option: `true` for SHA-256 of the key (clients that know their key can compute it;
 * a small key space such as IPv4 addresses can be enumerated), `{ secret }` for HMAC-SHA-256 with
 * that secret (opaque to everyone without it), `false` for none.
 */
export type PartitionKeyOption = boolean | { readonly secret: string | Buffer };

/** What the `'draft-10'` and `'draft-8'` writers add beyond the mode. */
export interface StructuredHeaderOptions {
  readonly partitionKey?: PartitionKeyOption | undefined;
  readonly quotaUnit?: QuotaUnit | undefined;
}

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
  /** draft-8/10 `RateLimit-Policy` item: `"<name>";q=<limit>;w=<window s>`. */
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

/** Bytes of the digest sent as `pk`: 128 bits, enough to tell partitions apart, short on the wire. */
const PARTITION_KEY_BYTES = 16;

/** `pk` of a decision's key: `;pk=:<base64>:` (an sf-binary parameter), or '' when not configured. */
type PartitionKeyParameter = (key: string) => string;

function partitionKeyParameter(option: PartitionKeyOption | undefined): PartitionKeyParameter | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return (key) => sfBinaryParameter(createHash('sha256').update(key).digest());
  const { secret } = option;
  return (key) => sfBinaryParameter(createHmac('sha256', secret).update(key).digest());
}

function sfBinaryParameter(digest: Buffer): string {
  return `;pk=:${digest.subarray(0, PARTITION_KEY_BYTES).toString('base64')}:`;
}

/** Validates `partitionKey` and `quotaUnit` (ConfigErrors name the option). */
export function resolveStructuredHeaderOptions(partitionKey: unknown, quotaUnit: unknown): StructuredHeaderOptions {
  // Unknown fields are errors, as everywhere (`{ secrett }` must not pass as keyless).
  if (partitionKey !== null && typeof partitionKey === 'object' && !Buffer.isBuffer(partitionKey)) {
    readOptions(partitionKey, ['secret'], 'partitionKey', "{ secret: '<a non-empty string or Buffer>' }", 'fields');
  }
  const validKey =
    partitionKey === undefined ||
    typeof partitionKey === 'boolean' ||
    (partitionKey !== null &&
      typeof partitionKey === 'object' &&
      ((typeof (partitionKey as { secret?: unknown }).secret === 'string' && (partitionKey as { secret: string }).secret.length > 0) ||
        Buffer.isBuffer((partitionKey as { secret?: unknown }).secret)));
  if (!validKey) {
    throw new ConfigError(`partitionKey must be true, false or { secret: '<a non-empty string or Buffer>' } (pk = a hash of the client key); got ${formatValue(partitionKey)}`);
  }
  if (quotaUnit !== undefined && quotaUnit !== 'requests' && quotaUnit !== 'content-bytes') {
    throw new ConfigError(`quotaUnit must be 'requests' or 'content-bytes' (the draft's qu); got ${formatValue(quotaUnit)}`);
  }
  return { partitionKey: partitionKey as PartitionKeyOption | undefined, quotaUnit: quotaUnit as QuotaUnit | undefined };
}

/**
 * The `RateLimit-Policy` value of the structured modes: the precomputed one, or with `;qu="…"`
 * appended to every item (built once per precomputed list, per writer).
 */
function structuredPolicyWriter(quotaUnit: QuotaUnit | undefined): (policies: readonly Policy[]) => string {
  if (quotaUnit === undefined || quotaUnit === 'requests') return (policies) => policyHeader(policies, true);
  const suffix = `;qu=${toSfString(quotaUnit)}`;
  const built = new WeakMap<readonly Policy[], string>();
  return (policies) => {
    let value = built.get(policies);
    if (value !== undefined) return value;
    value = '';
    for (const policy of policies) value = value === '' ? structuredItem(policy) + suffix : `${value}, ${structuredItem(policy)}${suffix}`;
    if (policyListStrings.has(policies)) built.set(policies, value);
    return value;
  };
}

/**
 * draft-10: `RateLimit-Policy: "100-in-1m";q=100;w=60, "hourly";q=1000;w=3600` and
 * `RateLimit: "100-in-1m";r=99;t=12` (t: until one more unit frees; omitted when none is waiting).
 */
function draft10Writer(options: StructuredHeaderOptions): HeaderWriter {
  const policyValue = structuredPolicyWriter(options.quotaUnit);
  const pk = partitionKeyParameter(options.partitionKey);
  return (target, set, decision) => {
    set(target, 'RateLimit-Policy', policyValue(decision.policies));
    const t = decision.nextQuotaMs > 0 ? `;t=${toSeconds(decision.nextQuotaMs)}` : '';
    set(target, 'RateLimit', `${sfNameOf(decision.policy)};r=${decision.remaining}${t}${pk === undefined ? '' : pk(decision.key)}`);
  };
}

/** draft-8: the same fields, with `t` = seconds until the quota resets (= Retry-After when refused). */
function draft8Writer(options: StructuredHeaderOptions): HeaderWriter {
  const policyValue = structuredPolicyWriter(options.quotaUnit);
  const pk = partitionKeyParameter(options.partitionKey);
  return (target, set, decision) => {
    set(target, 'RateLimit-Policy', policyValue(decision.policies));
    set(target, 'RateLimit', `${sfNameOf(decision.policy)};r=${decision.remaining};t=${resetSeconds(decision)}${pk === undefined ? '' : pk(decision.key)}`);
  };
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

const WRITERS: Readonly<Record<HeaderMode, (options: StructuredHeaderOptions) => HeaderWriter>> = {
  'draft-10': draft10Writer,
  'draft-8': draft8Writer,
  'draft-7': () => writeDraft7,
  'draft-6': () => writeDraft6,
  legacy: () => writeLegacy,
};

/** Every header mode, in the order error messages list them. */
export const HEADER_MODES = Object.keys(WRITERS) as readonly HeaderMode[];

/**
 * The writer of a mode (already validated by the options parser), built once per limiter: it
 * writes what the response follows (`decision.enforced` for a shadow decision that has one) and
 * nothing for shadow-only decisions or decisions made without the store.
 */
export function headerWriter(mode: HeaderMode, options: StructuredHeaderOptions = {}): HeaderWriter {
  const write = WRITERS[mode](options);
  return (target, set, decision) => {
    const shown = decision.shadow ? decision.enforced : decision;
    if (shown === undefined || shown.error !== undefined) return;
    write(target, set, shown);
  };
}
