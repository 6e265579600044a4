/**
 * The ioredis client of a Redis-backed case: at its defaults, as a user's quick-start client is, or
 * with `enableAutoPipelining`. Resolves once connected, so no measured request waits for a connection.
 */
import { Redis } from 'ioredis';

export async function connectedClient(url: string, autoPipelining: boolean): Promise<Redis> {
  const client = autoPipelining ? new Redis(url, { enableAutoPipelining: true }) : new Redis(url);
  if (client.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve);
      client.once('error', reject);
    });
  }
  return client;
}
