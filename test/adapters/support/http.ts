/**
 * A plain HTTP client for lock tests: one fresh connection per request (`agent: false`), so no
 * keep-alive socket outlives a test and a request can be cut off mid-flight on purpose.
 */
import { createServer, request, type IncomingHttpHeaders, type RequestListener, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 with a free port; `close()` also closes every open connection. */
export async function listen(listener: RequestListener, options: ServerOptions = {}): Promise<TestServer> {
  const server = createServer(options, listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SendOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string | string[]>;
  /** A JSON body (object) or raw text. */
  body?: unknown;
}

export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  json(): any;
}

function encode(options: SendOptions): { headers: Record<string, string | string[]>; payload: Buffer | undefined } {
  const headers: Record<string, string | string[]> = { ...options.headers };
  if (options.body === undefined) return { headers, payload: undefined };
  const payload = Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
  if (typeof options.body !== 'string') headers['content-type'] ??= 'application/json';
  headers['content-length'] = String(payload.length);
  return { headers, payload };
}

/** Sends one request and reads the whole response. */
export function send(port: number, options: SendOptions = {}): Promise<TestResponse> {
  const { headers, payload } = encode(options);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'POST', path: options.path ?? '/', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Sends a request and destroys the connection `afterMs` later, before any response (a client that gives up). */
export function sendAndHangUp(port: number, options: SendOptions, afterMs: number): Promise<void> {
  const { headers, payload } = encode(options);
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'POST', path: options.path ?? '/', headers, agent: false });
    req.on('error', () => resolve());
    req.on('response', (res) => res.resume());
    req.end(payload);
    setTimeout(() => {
      req.destroy();
      resolve();
    }, afterMs);
  });
}
