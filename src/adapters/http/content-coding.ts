/**
 * Undoing a response's Content-Encoding before it is stored for replay. A replay never carries
 * Content-Encoding (see idempotency-headers.ts), so its body must be the representation itself:
 * a response compressed on its way out (Fastify's onSend compression, an Express `compression()`
 * mounted after withLock) is stored decoded, and a retry gets it as identity, or compressed anew
 * by whatever compresses the app's responses for that retry. Decoded on zlib's thread pool, not
 * the event loop: a body may be up to `replay.maxBodyBytes` (64 MiB at most).
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import type { OutgoingHttpHeaders } from 'node:http';

type Decoder = (bytes: Buffer, options: ZlibOptions) => Promise<Buffer>;

const gunzipAsync: Decoder = promisify(gunzip);
const inflateAsync: Decoder = promisify(inflate);
const inflateRawAsync: Decoder = promisify(inflateRaw);
const brotliAsync: Decoder = promisify(brotliDecompress);

/** `deflate` is the zlib format (RFC 9110 §8.4.1.2), which some servers send raw: both are read. */
const inflateEither: Decoder = (bytes, options) =>
  inflateAsync(bytes, options).catch((err: unknown) => {
    if (err instanceof RangeError) throw err; // past the cap: raw would not fit either
    return inflateRawAsync(bytes, options);
  });

const DECODERS: Readonly<Record<string, Decoder>> = { gzip: gunzipAsync, 'x-gzip': gunzipAsync, deflate: inflateEither, br: brotliAsync };

/**
 * The body of a captured response (`headers` with lower-case names, as CapturedResponse has them),
 * its content codings undone (RFC 9110 §8.4: listed in the order applied). Null when it cannot be
 * stored for replay: a coding Node cannot decode, bytes that do not decode, or a decoded body over
 * `maxBytes` (decoded with that cap, so a small compressed body cannot expand without bound).
 */
export async function decodedBody(headers: OutgoingHttpHeaders, body: Buffer, maxBytes: number): Promise<Buffer | null> {
  const header = headers['content-encoding'];
  if (header === undefined || body.length === 0) return body; // a HEAD or 304 answer has no bytes to decode
  const codings = String(header)
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  let decoded = body;
  try {
    for (let i = codings.length - 1; i >= 0; i--) {
      const decode = DECODERS[codings[i]!];
      if (decode === undefined) return null;
      decoded = await decode(decoded, { maxOutputLength: Math.max(1, maxBytes) });
    }
  } catch {
    return null; // corrupt, or past maxBytes (RangeError)
  }
  return decoded.length > maxBytes ? null : decoded;
}
