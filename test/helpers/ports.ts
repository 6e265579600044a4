/**
 * Free TCP ports on 127.0.0.1 for throwaway servers.
 *
 * Ports are drawn at random from 12000–21999 and probed by binding them. That range keeps the
 * cluster bus port (port + 10000, 22000–31999) below Linux's ephemeral range (32768+), so an
 * outgoing connection cannot grab either port between our probe and redis-server's bind, and
 * `restart()` can re-bind the same port later. Parallel workers may still race for one port;
 * the server start retries with another port when its bind fails.
 */
import { createServer } from 'node:net';

const FIRST_PORT = 12_000;
const PORT_COUNT = 10_000;
/** Redis Cluster's bus listens on the client port + 10000. */
export const CLUSTER_BUS_OFFSET = 10_000;
const MAX_PROBES = 100;

/** A port that is free now (and whose cluster bus port is free too, when `clusterBus`). */
export async function findFreePort(options: { clusterBus?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < MAX_PROBES; attempt++) {
    const port = FIRST_PORT + Math.floor(Math.random() * PORT_COUNT);
    if (!(await isPortFree(port))) continue;
    if (options.clusterBus && !(await isPortFree(port + CLUSTER_BUS_OFFSET))) continue;
    return port;
  }
  throw new Error(`no free port found on 127.0.0.1 in ${FIRST_PORT}-${FIRST_PORT + PORT_COUNT - 1} after ${MAX_PROBES} probes`);
}

/** Whether 127.0.0.1:`port` can be bound right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
