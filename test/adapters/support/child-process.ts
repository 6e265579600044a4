/**
 * Child app processes (child-app.ts) for multi-process tests, stopped by PID (never by name).
 * They run the TypeScript sources through tsx, with `.lua` imports loaded as text by the hook
 * the examples use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const APP = fileURLToPath(new URL('./child-app.ts', import.meta.url));
const LUA_LOADER = fileURLToPath(new URL('../../../examples/support/register-lua-text.mjs', import.meta.url));
const START_TIMEOUT_MS = 20_000;

export interface ChildApp {
  readonly port: number;
  readonly pid: number;
  /** Lines the app printed, e.g. `RUN <pid> <fence>`. */
  readonly lines: string[];
  /** Resolves with the first printed line that starts with `prefix` (already printed or to come). */
  waitForLine(prefix: string): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGKILL and wait for the exit. */
  stop(): Promise<void>;
}

export interface ChildAppOptions {
  framework: 'express' | 'koa' | 'fastify' | 'hono';
  redisUrl: string;
  lockKey: string;
  ttlMs: number;
  holdMs: number;
}

export async function startChildApp(options: ChildAppOptions): Promise<ChildApp> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--import', LUA_LOADER, APP], {
    env: {
      ...process.env,
      FRAMEWORK: options.framework,
      REDIS_URL: options.redisUrl,
      LOCK_KEY: options.lockKey,
      LOCK_TTL_MS: String(options.ttlMs),
      HOLD_MS: String(options.holdMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  let stderr = '';
  let pending = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let end: number;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      lines.push(line);
      for (const waiter of waiters.filter((w) => line.startsWith(w.prefix))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitForLine = (prefix: string): Promise<string> => {
    const found = lines.find((line) => line.startsWith(prefix));
    return found !== undefined ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ prefix, resolve }));
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  let timer: NodeJS.Timeout | undefined;
  const listening = await Promise.race([
    waitForLine('LISTENING '),
    exited.then(() => Promise.reject(new Error(`child app exited before listening:\n${stderr}`))),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`child app not listening within ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    }),
  ])
    .catch(async (err: unknown) => {
      await stop();
      throw err;
    })
    .finally(() => clearTimeout(timer));
  return {
    port: Number(listening.split(' ')[1]),
    pid: child.pid!,
    lines,
    waitForLine,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    stop,
  };
}
