/**
 * What the node-redis and GLIDE adapters share: the command as those clients take it (strings and
 * Buffers only), and TRYAGAIN handled as ioredis does (a multi-key call meeting a slot whose keys
 * are half migrated: wait a little and send it again).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisArgument } from '../client.js';

/** `[command, ...args]` with numbers as decimal strings (node-redis and GLIDE refuse numbers). */
export function toWire(command: string, args: readonly RedisArgument[]): (string | Buffer)[] {
  const wire: (string | Buffer)[] = new Array<string | Buffer>(args.length + 1);
  wire[0] = command;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    wire[i + 1] = typeof arg === 'number' ? String(arg) : arg;
  }
  return wire;
}

/** ioredis's defaults: retryDelayOnTryAgain 100 ms, up to 16 redirections. */
const TRYAGAIN_DELAY_MS = 100;
const TRYAGAIN_ATTEMPTS = 16;

/**
 * `send()` again while it answers TRYAGAIN (Redis Cluster, a multi-key call during the migration of
 * its slot, when some of its keys have moved and some not yet). The caller's budget bounds the wait.
 */
export async function retryingTryAgain<T>(send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (attempt >= TRYAGAIN_ATTEMPTS || !(err instanceof Error) || !err.message.startsWith('TRYAGAIN')) throw err;
      await sleep(TRYAGAIN_DELAY_MS, undefined, { ref: false });
    }
  }
}
