/**
 * Reading the `Idempotency-Key` request header (draft-ietf-httpapi-idempotency-key-header): an
 * RFC 8941 sf-string (`"abc"`), also accepted bare (`abc`) — both give the key `abc`. A quoted
 * key is an RFC 8941 Item: parameters after it (`"abc";v=1`) are valid and, the draft defining
 * none, ignored; a bare key is taken whole (`abc;v=1` is that key). A key is
 * 1–255 printable ASCII characters (Stripe's maximum); control characters, non-ASCII text, a
 * malformed quoted string or a header sent twice (also as one line joined by a comma, which a bare
 * key cannot hold) are refused (400), never guessed at.
 */
import { DEFAULTS } from '../../core/index.js';
import type { IncomingMessage } from 'node:http';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** What the reader needs of a request: its header field lines (a Node `IncomingMessage` has both). */
export type HeaderLines = Pick<IncomingMessage, 'headersDistinct' | 'rawHeaders'>;

/** Why a request has no usable key; each maps to a 400 problem. */
export type IdempotencyKeyProblem = 'missing' | 'repeated' | 'empty' | 'too-long' | 'invalid-characters' | 'malformed';

export type IdempotencyKeyReading =
  | { readonly ok: true; readonly key: string }
  | { readonly ok: false; readonly problem: IdempotencyKeyProblem; readonly detail: string };

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** Optional whitespace around a field value (RFC 9110 §5.5). */
const OWS = /^[ \t]+|[ \t]+$/g;

/**
 * Every `Idempotency-Key` field line of the request, kept apart (Node's `req.headers` would
 * join two of them with ', ', hiding a repeated header).
 */
export function idempotencyKeyValues(req: HeaderLines): readonly string[] | undefined {
  const distinct = req.headersDistinct?.[IDEMPOTENCY_KEY_HEADER];
  if (distinct !== undefined) return distinct;
  const values: string[] = [];
  const raw = req.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === IDEMPOTENCY_KEY_HEADER) values.push(raw[i + 1]!);
  }
  return values.length > 0 ? values : undefined;
}

/** Parses the header's field lines (see the file comment for the rules). */
export function readIdempotencyKey(values: readonly string[] | undefined): IdempotencyKeyReading {
  if (values === undefined || values.length === 0) {
    return refuse('missing', 'This endpoint requires an Idempotency-Key header.');
  }
  if (values.length > 1) return refuse('repeated', 'Send the Idempotency-Key header once.');
  const value = values[0]!.replace(OWS, '');
  // Two field lines joined into one by a proxy ('a, b'): a bare key holds no comma (a quoted one may).
  if (!value.startsWith('"') && value.includes(',')) {
    return refuse('repeated', 'Send the Idempotency-Key header once; a key with a comma must be quoted, like "a,b".');
  }
  const key = value.startsWith('"') ? parseSfString(value) : value;
  if (key === undefined) return refuse('malformed', 'A quoted Idempotency-Key must be one RFC 8941 string, like "8e03978e-40d5".');
  if (!PRINTABLE_ASCII.test(key)) {
    return refuse('invalid-characters', 'An Idempotency-Key may only contain printable ASCII characters.');
  }
  if (key.length === 0) return refuse('empty', 'The Idempotency-Key header is empty.');
  if (key.length > DEFAULTS.idempotencyKeyMaxLength) {
    return refuse('too-long', `An Idempotency-Key has at most ${DEFAULTS.idempotencyKeyMaxLength} characters; this one has ${key.length}.`);
  }
  return { ok: true, key };
}

/**
 * An Item's parameters (RFC 8941 §3.1.2; RFC 9651's dates and display strings too): `;key` or
 * `;key=bare-item`, each bare item an integer, decimal, string, token, byte sequence or boolean.
 */
const SF_PARAMETERS = new RegExp(
  '^(?:;[ ]*[a-z*][a-z0-9_.*-]*(?:=(?:' +
    [
      '-?[0-9]{1,12}\\.[0-9]{1,3}', // decimal
      '-?[0-9]{1,15}', // integer
      '"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\["\\\\])*"', // string
      "[A-Za-z*][!#$%&'*+\\-.^_`|~0-9A-Za-z:/]*", // token
      ':[A-Za-z0-9+/]*={0,2}:', // byte sequence
      '\\?[01]', // boolean
      '@-?[0-9]{1,15}', // date
      '%"(?:[\\x20\\x21\\x23\\x24\\x26-\\x5b\\x5d-\\x7e]|%[0-9a-f]{2})*"', // display string
    ].join('|') +
    '))?)*$',
);

/** The content of an RFC 8941 sf-string at the start of `value`, followed by nothing but parameters; undefined when malformed. */
function parseSfString(value: string): string | undefined {
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const char = value[i]!;
    if (char === '"') return SF_PARAMETERS.test(value.slice(i + 1)) ? out : undefined;
    if (char === '\\') {
      const escaped = value[++i];
      if (escaped !== '"' && escaped !== '\\') return undefined;
      out += escaped;
    } else {
      out += char;
    }
  }
  return undefined; // no closing quote
}

function refuse(problem: IdempotencyKeyProblem, detail: string): IdempotencyKeyReading {
  return { ok: false, problem, detail };
}
