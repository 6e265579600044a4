/** The store the examples use: a RedisStore on `REDIS_URL` when it is set, else the in-memory default. */
import { Redis } from 'ioredis';
import { RedisStore, type Store } from '../../src/index.js';

export async function exampleStore(): Promise<{ store: Store | undefined; close(): Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (url === undefined || url === '') return { store: undefined, close: async () => {} };
  // Fail fast instead of queueing while Redis is away: ratelock's own budget (`timeout`) applies.
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  await client.connect();
  return { store: new RedisStore({ client }), close: async () => void (await client.quit()) };
}
