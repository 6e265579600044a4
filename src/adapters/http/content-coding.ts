/**
 * Undoing a response's Content-Encoding before it is stored for replay. A replay never carries
 * Content-Encoding (see idempotency-headers.ts), so its body must be the representation itself:
 * a response compressed on its way out (Fastify's onSend compression, an Express `compression()`
 * mounted after withLock) is stored decoded, and a retry gets it as identity, or compressed anew
 * by whatever compresses the app's responses for that retry.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync, type ZlibOptions } from 'node:zlib';
import type { OutgoingHttpHeaders } from 'node:http';

/**
 * The body of a response whose headers are `headers`, with its content codings undone (RFC 9110
 * §8.4: listed in the order applied). Null when it cannot be stored for replay: a coding Node
 * cannot decode, bytes that do not decode, or a decoded body over `maxBytes` (decoded with that
 * cap, so a small compressed body cannot expand without bound).
 */
export function decodedBody(headers: OutgoingHttpHeaders, body: Buffer, maxBytes: number): Buffer | null {
  const header = contentEncoding(headers);
  if (header === undefined || body.length === 0) return body; // a HEAD or 304 answer has no bytes to decode
  const codings = header
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  let decoded = body;
  try {
    for (let i = codings.length - 1; i >= 0; i--) {
      const decode = DECODERS[codings[i]!];
      if (decode === undefined) return null;
      decoded = decode(decoded, { maxOutputLength: Math.max(1, maxBytes) });
    }
  } catch {
    return null; // corrupt, or past maxBytes (RangeError)
  }
  return decoded.length > maxBytes ? null : decoded;
}

/** The Content-Encoding header's value, whatever the case of its name. */
function contentEncoding(headers: OutgoingHttpHeaders): string | undefined {
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase() !== 'content-encoding') continue;
    const value = headers[name];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.join(',') : String(value);
  }
  return undefined;
}

type Decoder = (bytes: Buffer, options: ZlibOptions) => Buffer;

/** `deflate` is the zlib format (RFC 9110 §8.4.1.2), which some servers send raw: both are read. */
function inflateEither(bytes: Buffer, options: ZlibOptions): Buffer {
  try {
    return inflateSync(bytes, options);
  } catch (err) {
    if (err instanceof RangeError) throw err;
    return inflateRawSync(bytes, options);
  }
}

const DECODERS: Readonly<Record<string, Decoder>> = {
  gzip: gunzipSync,
  'x-gzip': gunzipSync,
  deflate: inflateEither,
  br: (bytes, options) => brotliDecompressSync(bytes, options),
};
