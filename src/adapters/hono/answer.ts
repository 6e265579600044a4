/**
 * Hono's one writer of ratelock's own responses (limited, refused, replayed): a Response built by
 * `c.body()`, so headers set earlier with `c.header()` (Retry-After, quota) are part of it. The
 * body goes as bytes with its Content-Length (an empty one: only the Content-Length its answer
 * names, as a replayed HEAD answer's).
 */
import type { Context } from 'hono';
import type { HttpAnswer } from '../http/answers.js';

export function answerResponse(c: Context, answer: HttpAnswer): Response {
  const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
  const headers: Record<string, string | string[]> = body.length > 0 ? { 'Content-Length': String(body.length) } : {};
  for (const name of Object.keys(answer.headers)) {
    const value = answer.headers[name]!;
    headers[name] = typeof value === 'string' ? value : [...value];
  }
  // No bytes, no body: a Response may not have one with 204 or 304, and the server would count 0 bytes.
  // (A Buffer is a Uint8Array; Hono's types want one over a plain ArrayBuffer.)
  if (body.length === 0) return c.body(null, answer.status as never, headers);
  return c.body(body as Uint8Array<ArrayBuffer>, answer.status as never, headers);
}

/** Sets one header with `c.header()`: a module-level function, so writing quota headers creates no closure per request. */
export function setHeader(c: Context, name: string, value: string): void {
  c.header(name, value);
}
