/** Reading a sliding log straight from Redis, for tests that check what the Lua wrote. */

/** What the readers need of a client (ioredis `Redis` and `Cluster` have it). */
interface LogReader {
  type(key: string): Promise<string>;
  get(key: string): Promise<string | null>;
  llen(key: string): Promise<number>;
  lrange(key: string, start: number, stop: number): Promise<string[]>;
}

/**
 * The entries of a sliding log as lua/sliding-log.lua keeps it, newest first: a LIST, or a
 * one-entry log as a STRING holding its entry.
 */
export async function logEntries(client: LogReader, key: string): Promise<number[]> {
  if ((await client.type(key)) === 'string') return [Number(await client.get(key))];
  return (await client.lrange(key, 0, -1)).map(Number);
}

/** How many entries a sliding log holds (see logEntries). */
export async function logLength(client: LogReader, key: string): Promise<number> {
  if ((await client.type(key)) === 'string') return 1;
  return client.llen(key);
}
