/**
 * HTTP plumbing for the fault tests: the adapter tests' server (127.0.0.1, free port, closed with
 * every connection) and a client that never rejects: one fresh connection per request
 * (`agent: false`), with a hard client-side timeout so a hung server fails the request instead of
 * the test.
 */
import { request, type IncomingHttpHeaders } from 'node:http';

// The server side is the adapter tests' own.
export { listen, type TestServer } from '../../adapters/support/http.js';

export interface Reply {
  /** 0 when the request failed (connection error or client timeout). */
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly error?: string;
}

export function send(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(options.body));
    }
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: err.message }));
    });
    req.setTimeout(options.timeoutMs ?? 25_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: err.message }));
    req.end(options.body);
  });
}
