/**
 * How the shared servers started once by global-setup.ts reach the test files: environment
 * variables. Vitest forks its workers after global setup and copies `process.env` into them, and
 * child processes a test spawns (app servers, `node --import tsx …`) inherit them too, which
 * vitest's `provide`/`inject` could not reach.
 */

/** What global setup publishes. */
export interface SharedServers {
  /** Base URL of the shared standalone server, without a DB number. */
  readonly redisUrl: string;
  /** Logical databases the standalone server has (one per test worker, see redis.ts). */
  readonly databases: number;
  /** The shared cluster's masters. */
  readonly clusterNodes: readonly { host: string; port: number }[];
}

const URL_VARIABLE = 'RATELOCK_TEST_REDIS_URL';
const DATABASES_VARIABLE = 'RATELOCK_TEST_REDIS_DATABASES';
const CLUSTER_VARIABLE = 'RATELOCK_TEST_CLUSTER_NODES';

export function publishSharedServers(servers: SharedServers): void {
  process.env[URL_VARIABLE] = servers.redisUrl;
  process.env[DATABASES_VARIABLE] = String(servers.databases);
  process.env[CLUSTER_VARIABLE] = formatNodes(servers.clusterNodes);
}

export function withdrawSharedServers(): void {
  delete process.env[URL_VARIABLE];
  delete process.env[DATABASES_VARIABLE];
  delete process.env[CLUSTER_VARIABLE];
}

const NOT_STARTED =
  'the shared test Redis servers are not running: run tests with `npx vitest run` (global setup test/helpers/global-setup.ts ' +
  'starts them) or from a process whose parent did';

export function sharedRedisUrl(): { url: string; databases: number } {
  const url = process.env[URL_VARIABLE];
  const databases = Number(process.env[DATABASES_VARIABLE]);
  if (!url || !Number.isInteger(databases)) throw new Error(`${URL_VARIABLE} is not set: ${NOT_STARTED}`);
  return { url, databases };
}

export function sharedClusterNodes(): { host: string; port: number }[] {
  const nodes = process.env[CLUSTER_VARIABLE];
  if (!nodes) throw new Error(`${CLUSTER_VARIABLE} is not set: ${NOT_STARTED}`);
  return parseNodes(nodes, CLUSTER_VARIABLE);
}

/** Parses `host:port,host:port` (the REDIS_CLUSTER_NODES format). */
export function parseNodes(text: string, source: string): { host: string; port: number }[] {
  return text.split(',').map((entry) => {
    const match = /^\s*([^\s:]+|\[[^\]]+\]):(\d{1,5})\s*$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65_535) {
      throw new Error(`${source} must be a comma-separated list of host:port entries; got ${JSON.stringify(text)}`);
    }
    return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  });
}

function formatNodes(nodes: readonly { host: string; port: number }[]): string {
  return nodes.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
}
