/**
 * The naive floor: what a developer writes in an afternoon. A sliding log in a ZSET, trimmed and
 * counted by a small Lua script, one EVALSHA per request, nothing else (no headers, no timeouts).
 */
import type { Redis } from 'ioredis';

// now from Redis TIME (ms); members come from the caller (unique per process), scores are ms.
const SLIDING_LOG = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
`;

/** Returns `allow(key)`: resolves true if the request may pass. */
export async function naiveLimiter(client: Redis, limit: number, windowMs: number): Promise<(key: string) => Promise<boolean>> {
  const sha = String(await client.script('LOAD', SLIDING_LOG));
  const window = String(windowMs);
  const max = String(limit);
  const memberPrefix = `${process.pid}:`;
  let seq = 0;
  return async (key) => (await client.evalsha(sha, 1, `naive:${key}`, window, max, memberPrefix + seq++)) === 1;
}
