/**
 * Which response headers a replay carries. Only describing headers of the representation are kept
 * by default; anything per-user, per-connection or per-moment is never stored, so a replay cannot
 * leak a session or lie about the connection. Content-Length is recomputed from the stored body,
 * but for an empty one: the first answer's is kept (a HEAD or 304 answer's describes the body a
 * GET would get).
 */
import { ConfigError, formatValue } from '../../core/index.js';
import type { OutgoingHttpHeaders } from 'node:http';

/** The header that marks a replayed response. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';

/**
 * Stored and replayed by default. Not Cache-Control/Expires/Age/Vary: caching headers describe the
 * original moment and audience, a replay is a fresh answer (opt them in with `replay.headers`).
 */
export const DEFAULT_REPLAYED_HEADERS: readonly string[] = [
  'content-type',
  'content-language',
  'content-location',
  'location',
  'etag',
  'last-modified',
  'link',
];

/**
 * Never stored, even when opted in: credentials and cookies (another client's session), hop-by-hop
 * headers (RFC 9110 §7.6.1), and headers the framework computes for the replay itself. The body is
 * captured as the handler wrote it, before any compression, so Content-Encoding is not kept either.
 */
export const NEVER_REPLAYED_HEADERS: readonly string[] = [
  'set-cookie',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'date',
  'content-length',
  'content-encoding',
  'idempotent-replayed',
];

const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The replayed header names (lower case): the defaults plus `extra`; a never-replayed name is a ConfigError. */
export function replayHeaderNames(extra: unknown, option: string): ReadonlySet<string> {
  const names = new Set(DEFAULT_REPLAYED_HEADERS);
  if (extra === undefined) return names;
  if (!Array.isArray(extra)) {
    throw new ConfigError(`${option} must be an array of response header names such as ['x-order-id']; got ${formatValue(extra)}`);
  }
  extra.forEach((name: unknown, index) => {
    if (typeof name !== 'string' || !HEADER_NAME_PATTERN.test(name)) {
      throw new ConfigError(`${option}[${index}] must be an HTTP header name such as 'x-order-id'; got ${formatValue(name)}`);
    }
    const lower = name.toLowerCase();
    if (NEVER_REPLAYED_HEADERS.includes(lower)) {
      throw new ConfigError(`${option}[${index}] "${name}" is never replayed (per-user, hop-by-hop or recomputed); remove it`);
    }
    names.add(lower);
  });
  return names;
}

/**
 * The headers of `headers` (as `res.getHeaders()` returns them) that a replay carries; with an
 * empty `body`, also the Content-Length the answer had (see above).
 */
export function pickReplayHeaders(headers: OutgoingHttpHeaders, names: ReadonlySet<string>, body: Buffer | null): Record<string, string | string[]> {
  const picked: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined) continue;
    if (names.has(name) || (name === 'content-length' && body?.length === 0)) picked[name] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return picked;
}
