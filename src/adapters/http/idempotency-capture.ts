/**
 * Capturing a finished response for replay, bounded by `replay.maxBodyBytes`: past the cap the
 * copy is dropped at once (memory stays ≤ the cap per request) and the record keeps the status
 * with `body: null` ("not replayable"). Works at the Node level (`ServerResponse`, streams), so
 * Express and Koa share it.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';

/**
 * Statuses never stored, whatever `storeServerErrors` says: 429 and 503 mean "try again later"
 * (e.g. a rate limiter or an overloaded dependency inside the route), so the retry must run.
 * ratelock's own refusals (400, 409, 422, 503) happen before a record exists and are never stored.
 */
export const NEVER_STORED_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** Whether a handler's response with `status` is stored for replay (else the record is aborted so a retry runs). */
export function isStorableStatus(status: number, storeServerErrors: boolean): boolean {
  if (NEVER_STORED_STATUSES.has(status)) return false;
  return status < 500 || storeServerErrors;
}

/** A copy of written chunks up to `maxBytes`; past it, nothing (and `result()` is null). */
export class BoundedBody {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;

  constructor(readonly maxBytes: number) {}

  add(chunk: unknown, encoding?: BufferEncoding): void {
    if (this.overflowed || chunk === undefined || chunk === null) return;
    const bytes = toBytes(chunk, encoding);
    if (bytes === undefined) return;
    if (this.size + bytes.length > this.maxBytes) {
      this.overflowed = true;
      this.chunks = [];
      this.size = 0;
      return;
    }
    // A copy: the writer may reuse its buffer once write() returns.
    this.chunks.push(Buffer.from(bytes));
    this.size += bytes.length;
  }

  /** The captured bytes, or null when the body went past the cap. */
  result(): Buffer | null {
    return this.overflowed ? null : Buffer.concat(this.chunks, this.size);
  }
}

function toBytes(chunk: unknown, encoding: BufferEncoding | undefined): Uint8Array | undefined {
  if (typeof chunk === 'string') {
    try {
      return Buffer.from(chunk, encoding ?? 'utf8');
    } catch {
      return Buffer.from(chunk, 'utf8');
    }
  }
  return chunk instanceof Uint8Array ? chunk : undefined;
}

export interface CapturedResponse {
  readonly status: number;
  /** Lower-case names, as `res.getHeaders()`, `collectHeaders` and web `Headers` give them. */
  readonly headers: OutgoingHttpHeaders;
  /** null when the body went past the cap. */
  readonly body: Buffer | null;
}

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * Tees what is written to `res` into a BoundedBody. When `res.end()` is called, `beforeEnd` runs
 * with the whole response BEFORE the last chunk is sent, so a client that has received the
 * response and retries always finds the record completed. `beforeEnd` must not reject.
 */
export function captureServerResponse(res: ServerResponse, maxBodyBytes: number, beforeEnd: (captured: CapturedResponse) => Promise<void>): void {
  const body = new BoundedBody(maxBodyBytes);
  const writeHeadHeaders: OutgoingHttpHeaders = {};
  const target = res as unknown as Record<'write' | 'end' | 'writeHead', AnyFunction>;
  const originalWrite = target.write;
  const originalEnd = target.end;
  const originalWriteHead = target.writeHead;
  let ended = false;

  // Wrappers stay in place after the end (restoring could drop a wrapper installed after ours).
  target.writeHead = function writeHead(this: unknown, ...args: unknown[]) {
    if (!ended) collectHeaders(typeof args[1] === 'string' ? args[2] : args[1], writeHeadHeaders);
    return originalWriteHead.apply(this, args);
  };
  target.write = function write(this: unknown, ...args: unknown[]) {
    if (!ended) body.add(args[0], typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined);
    return originalWrite.apply(this, args);
  };
  target.end = function end(this: unknown, ...args: unknown[]) {
    if (ended) return originalEnd.apply(this, args);
    ended = true;
    if (typeof args[0] !== 'function') body.add(args[0], typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined);
    const captured: CapturedResponse = {
      status: res.statusCode,
      headers: { ...res.getHeaders(), ...writeHeadHeaders },
      body: body.result(),
    };
    beforeEnd(captured)
      .catch(() => undefined)
      .then(() => {
        try {
          originalEnd.apply(res, args);
        } catch (err) {
          // Deferred, a bad end() argument can no longer throw to its caller: fail the response instead.
          res.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      });
    return res;
  };
}

/** Headers passed to `writeHead` (object, `[name, value][]` or flat `[name, value, …]`), lower-cased. */
function collectHeaders(headers: unknown, into: OutgoingHttpHeaders): void {
  if (headers === null || typeof headers !== 'object') return;
  if (!Array.isArray(headers)) {
    for (const [name, value] of Object.entries(headers)) into[name.toLowerCase()] = value as OutgoingHttpHeaders[string];
    return;
  }
  if (Array.isArray(headers[0])) {
    for (const pair of headers as unknown[][]) into[String(pair[0]).toLowerCase()] = pair[1] as OutgoingHttpHeaders[string];
    return;
  }
  for (let i = 0; i + 1 < headers.length; i += 2) into[String(headers[i]).toLowerCase()] = headers[i + 1] as OutgoingHttpHeaders[string];
}

/**
 * A pass-through stream for a streamed body: copies up to the cap, and when the source ends runs
 * `onEnd(body)` before the stream finishes (so the record completes before the last byte). If the
 * stream errors or is destroyed first (client gone, source failed), `onFail()` runs instead.
 * Exactly one of the two runs; neither may reject.
 */
export function captureStream(maxBodyBytes: number, onEnd: (body: Buffer | null) => Promise<void>, onFail: () => void): Transform {
  const body = new BoundedBody(maxBodyBytes);
  let settled = false;
  const capture = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      body.add(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      settled = true;
      onEnd(body.result())
        .catch(() => undefined)
        .then(() => callback());
    },
  });
  capture.once('close', () => {
    if (settled) return;
    settled = true;
    onFail();
  });
  return capture;
}
