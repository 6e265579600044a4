/**
 * Shared by the withLock test files: start a lock app (closed after the file's tests) and a
 * promise resolved from outside (to hold a handler mid-flight).
 */
import { afterAll } from 'vitest';
import { lockApp, type FrameworkName, type LockAppOptions } from './apps.js';
import { listen, type TestServer } from './http.js';

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Starts `lockApp(name, options)` on a free port; it is closed after this file's tests. */
export async function serve(name: FrameworkName, options: LockAppOptions): Promise<number> {
  const server = await listen(lockApp(name, options));
  servers.push(server);
  return server.port;
}

/** A promise and the function that resolves it. */
export function deferred(): [Promise<void>, () => void] {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return [promise, resolve];
}
