/** Small helpers the examples share: start a server, stop it, print a table, run `--once`. */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `listener` on 127.0.0.1 (`port` 0 = a free port). */
export function listen(listener: RequestListener, port = 0): Promise<{ server: Server; baseUrl: string }> {
  return new Promise((resolve, reject) => {
    const server = createServer(listener);
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address() as AddressInfo;
      resolve({ server, baseUrl: `http://127.0.0.1:${address.port}` });
    });
  });
}

/** Stops accepting connections and drops idle keep-alive ones, so the process can exit. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

/** Prints rows as an aligned table. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) console.log(line(row));
}

/** One request: `[method path, status, RateLimit, Retry-After]` for printTable. */
export async function probe(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}): Promise<string[]> {
  const response = await fetch(`${baseUrl}${path}`, { method, headers });
  await response.arrayBuffer();
  return [`${method} ${path}`, String(response.status), response.headers.get('ratelimit') ?? '-', response.headers.get('retry-after') ?? '-'];
}

export const PROBE_HEADER = ['request', 'status', 'RateLimit', 'Retry-After'] as const;

/**
 * Serves `listener`: with `--once`, on a free port, runs `exercise` against it, then stops (exit
 * code 0); otherwise on `PORT` (default 3000) until Ctrl-C.
 */
export async function serve(listener: RequestListener, exercise: (baseUrl: string) => Promise<void>, cleanup: () => Promise<void>): Promise<void> {
  const once = process.argv.includes('--once');
  const { server, baseUrl } = await listen(listener, once ? 0 : Number(process.env.PORT ?? 3000));
  if (!once) {
    console.log(`listening on ${baseUrl} (Ctrl-C to stop)`);
    process.once('SIGINT', () => void close(server).then(cleanup));
    return;
  }
  try {
    await exercise(baseUrl);
  } finally {
    await close(server);
    await cleanup();
  }
}
