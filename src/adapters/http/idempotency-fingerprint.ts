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
 * Follows JSON.stringify otherwise (toJSON, undefined members dropped, undefined and holes in
 * arrays → null), except for what it would merge or refuse: a number that is not finite is written
 * bare (`Infinity`, `-Infinity`, `NaN`), where JSON.stringify writes null, so a parsed `{"a":1e400}`
 * does not match `{"a":null}`; a BigInt (a parser may make one of a large integer) as `12n`, where
 * JSON.stringify throws. No JSON text serialises to either. Every own member counts, whatever its
 * name: `__proto__`, `constructor` and the like included.
 */
export function canonicalJson(value: unknown): string {
  return serialize(value) ?? 'undefined';
}

/** One value as canonical JSON, or undefined for what JSON.stringify leaves out (undefined, functions, symbols). */
function serialize(value: unknown): string | undefined {
  const plain = value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function'
    ? (value as { toJSON(): unknown }).toJSON()
    : value;
  switch (typeof plain) {
    case 'string':
      return JSON.stringify(plain);
    case 'boolean':
      return plain ? 'true' : 'false';
    case 'number':
      return Number.isFinite(plain) ? JSON.stringify(plain) : String(plain);
    case 'bigint':
      return `${plain}n`;
    case 'object':
      break;
    default:
      return undefined;
  }
  if (plain === null) return 'null';
  if (Array.isArray(plain)) {
    const items: string[] = [];
    for (let i = 0; i < plain.length; i++) items.push(serialize(plain[i]) ?? 'null');
    return `[${items.join(',')}]`;
  }
  // Own members read by name: a member named "__proto__" (JSON.parse makes it an own property)
  // is read as itself, never as the prototype.
  const members: string[] = [];
  for (const name of Object.keys(plain).sort()) {
    const member = serialize((plain as Record<string, unknown>)[name]);
    if (member !== undefined) members.push(`${JSON.stringify(name)}:${member}`);
  }
  return `{${members.join(',')}}`;
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url');
}
