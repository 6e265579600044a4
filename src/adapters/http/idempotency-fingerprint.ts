/**
 * The default request fingerprint of an idempotent request: a retry with the same key must be
 * the same request, else it gets 422. It covers:
 *
 * - the method (upper-cased);
 * - the concrete path as sent (`/orders/42`, not the route pattern), mount path included;
 * - the query, its parameters sorted (`?b=2&a=1` ≡ `?a=1&b=2`; repeated names keep their order);
 * - the body as the body parser left it: a parsed JSON/form body (object or array) as canonical
 *   JSON — object keys sorted at every depth, so **JSON key order does not matter** (array order
 *   does); a raw body (Buffer or string, e.g. `express.raw()` / `express.text()`) byte for byte.
 *   Without a body parser before `withLock` the body is not covered: place `withLock` after it,
 *   or pass `replay.fingerprint`.
 *
 * The result is SHA-256 in base64url (43 characters): what is stored, never the body itself.
 */
import { createHash } from 'node:crypto';

export interface FingerprintInput {
  readonly method: string;
  /** The request target as received, e.g. `req.originalUrl` / `ctx.originalUrl`. */
  readonly url: string;
  /** The parsed body (`req.body` / `ctx.request.body`), undefined without a body parser. */
  readonly body: unknown;
}

export function requestFingerprint(input: FingerprintInput): string {
  const queryStart = input.url.indexOf('?');
  const path = queryStart === -1 ? input.url : input.url.slice(0, queryStart);
  const query = queryStart === -1 ? '' : canonicalQuery(input.url.slice(queryStart + 1));
  return sha256(JSON.stringify([input.method.toUpperCase(), path, query, bodyDigest(input.body)]));
}

/** Query parameters sorted by name (stable: repeated names keep their relative order). */
export function canonicalQuery(query: string): string {
  const params = new URLSearchParams(query);
  params.sort();
  return params.toString();
}

function bodyDigest(body: unknown): string {
  if (body === undefined) return 'none';
  if (typeof body === 'string') return `text:${sha256(body)}`;
  if (body instanceof Uint8Array) return `bytes:${sha256(body)}`;
  return `json:${sha256(canonicalJson(body))}`;
}

/**
 * JSON with object keys sorted at every depth, so `{"a":1,"b":2}` and `{"b":2,"a":1}` match.
 * Follows JSON.stringify otherwise (toJSON, undefined members dropped, undefined in arrays → null).
 * Every own member counts, whatever its name: `__proto__`, `constructor` and the like included.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'undefined';
}

function sortKeys(value: unknown): unknown {
  const plain = value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function'
    ? (value as { toJSON(): unknown }).toJSON()
    : value;
  if (Array.isArray(plain)) return plain.map(sortKeys);
  if (plain === null || typeof plain !== 'object') return plain;
  // No prototype: on a plain {} a member named "__proto__" (JSON.parse makes it an own property)
  // would hit the prototype setter and vanish from the copy, so two bodies differing only there
  // would share a fingerprint.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const name of Object.keys(plain).sort()) sorted[name] = sortKeys((plain as Record<string, unknown>)[name]);
  return sorted;
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url');
}
