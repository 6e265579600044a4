/**
 * The harness itself: shared servers reachable and isolated per worker, throwaway servers
 * controllable by PID (restart, SIGSTOP/SIGCONT, SIGKILL, stop), clusters joined, and no
 * redis-server left behind, even when the process that started it is killed.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isPortFree } from './ports.js';
import {
  clusterNodes,
  newClusterClient,
  newRedisClient,
  redisDb,
  redisUrl,
  startRedisCluster,
  startRedisServer,
  type RedisServerHandle,
} from './redis.js';
import { parseInfo, sendCommand } from './resp.js';

const PROBE_MS = 300;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

async function waitUntil(condition: () => boolean, boundMs: number, what: string): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not ${what} after ${boundMs} ms`);
    await sleep(20);
  }
}

const waitUntilGone = (pid: number, boundMs: number): Promise<void> =>
  waitUntil(() => !isAlive(pid), boundMs, `process ${pid} gone`);

const ping = (port: number): Promise<string | null> => sendCommand(port, ['PING'], PROBE_MS);

describe('shared standalone server', () => {
  const clients: Redis[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.quit()));
  });

  it('answers PING on this worker’s own logical DB', async () => {
    const client = newRedisClient();
    clients.push(client);
    expect(await client.ping()).toBe('PONG');
    const db = redisDb();
    expect(db).toBeGreaterThanOrEqual(1);
    expect(redisUrl()).toMatch(new RegExp(`^redis://127\\.0\\.0\\.1:\\d+/${db}$`));
    expect(String(await client.client('INFO'))).toContain(` db=${db} `);
  });

  it('FLUSHDB on this worker’s DB leaves other DBs alone', async () => {
    const own = newRedisClient();
    const other = new Redis(redisUrl().replace(/\/\d+$/, '/0'), { maxRetriesPerRequest: 1 });
    clients.push(own, other);
    const key = `harness:${process.pid}:${Date.now()}`;
    await own.set(key, 'mine');
    await other.set(key, 'other', 'PX', 60_000);
    await own.flushdb();
    expect(await own.get(key)).toBeNull();
    expect(await other.get(key)).toBe('other');
    await other.del(key);
  });
});

describe('shared cluster', () => {
  it('has cluster_state:ok on every master', async () => {
    const masters = clusterNodes();
    expect(masters).toHaveLength(3);
    for (const { port } of masters) {
      const info = parseInfo(await sendCommand(port, ['CLUSTER', 'INFO'], 2_000));
      expect(info.get('cluster_state')).toBe('ok');
      expect(info.get('cluster_slots_assigned')).toBe('16384');
    }
  });

  it('routes keys to every master through newClusterClient()', async () => {
    const client = newClusterClient();
    try {
      // Fixed hash tags a…l spread over all three masters' slot ranges (CRC16 is deterministic).
      const keys = 'abcdefghijkl'.split('').map((tag) => `harness:{${tag}}:${process.pid}`);
      for (const key of keys) await client.set(key, key, 'PX', 60_000);
      for (const key of keys) expect(await client.get(key)).toBe(key);
      const masters = client.nodes('master');
      expect(masters).toHaveLength(3);
      const holders = await Promise.all(
        keys.map(async (key) => {
          // A master that does not own the key's slot answers MOVED.
          const found = await Promise.all(masters.map((node) => node.exists(key).catch(() => 0)));
          return found.flatMap((count, index) => (count === 1 ? [index] : []));
        }),
      );
      for (const holder of holders) expect(holder).toHaveLength(1); // each key on exactly one master
      expect(new Set(holders.flat()).size).toBe(3);
      await Promise.all(keys.map((key) => client.del(key)));
    } finally {
      await client.quit();
    }
  });
});

describe('startRedisServer()', () => {
  const servers: RedisServerHandle[] = [];
  const start = async (args?: string[]): Promise<RedisServerHandle> => {
    const server = await startRedisServer(args ? { args } : {});
    servers.push(server);
    return server;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  it('starts a server on 127.0.0.1 that answers PING and takes extra args', async () => {
    const server = await start(['--maxmemory', '5mb']);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await ping(server.port)).toBe('PONG');
    const info = parseInfo(await sendCommand(server.port, ['INFO', 'memory'], 2_000));
    expect(info.get('maxmemory')).toBe(String(5 * 1024 * 1024));
    expect(parseInfo(await sendCommand(server.port, ['INFO', 'server'], 2_000)).get('process_id')).toBe(String(server.pid));
  });

  it('restart() keeps the port, starts a new process and empties the data', async () => {
    const server = await start();
    const { port, pid } = server;
    expect(await sendCommand(port, ['SET', 'k', 'v'], 2_000)).toBe('OK');
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    expect(isAlive(pid)).toBe(false);
    expect(await sendCommand(port, ['GET', 'k'], 2_000)).toBeNull();
    expect(await sendCommand(port, ['DBSIZE'], 2_000)).toBe('0');
  });

  it('kill("SIGSTOP") freezes the server with its port open; kill("SIGCONT") resumes it', async () => {
    const server = await start();
    server.kill('SIGSTOP');
    await expect(ping(server.port)).rejects.toThrow(/no reply .* within 300 ms/);
    server.kill('SIGCONT');
    expect(await sendCommand(server.port, ['PING'], 2_000)).toBe('PONG');
  });

  it('stop() ends a SIGSTOPped server too, promptly', async () => {
    const server = await start();
    server.kill('SIGSTOP');
    const started = Date.now();
    await server.stop();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(isAlive(server.pid)).toBe(false);
  });

  it('kill() (SIGKILL) crashes it; restart() brings it back on the same port', async () => {
    const server = await start();
    const { pid } = server;
    server.kill();
    await waitUntilGone(pid, 2_000);
    await expect(ping(server.port)).rejects.toThrow();
    await server.restart();
    expect(await ping(server.port)).toBe('PONG');
  });

  it('stop() leaves no process and frees the port; a second stop() is harmless', async () => {
    const server = await start();
    await server.stop();
    expect(isAlive(server.pid)).toBe(false);
    expect(await isPortFree(server.port)).toBe(true);
    await server.stop();
    server.kill('SIGCONT'); // no-op once exited
  });

  it('fails with the server’s own output when redis-server rejects its arguments', async () => {
    await expect(startRedisServer({ args: ['--no-such-option', 'x'] })).rejects.toThrow(/exited during startup[\s\S]*no-such-option/);
  });

  it('the servers of a process that is SIGKILLed die with it, and their temp dirs go (process guard)', async () => {
    const script = [
      "import { startRedisServer } from './test/helpers/redis-server.ts';",
      'const server = await startRedisServer();',
      'console.log(server.pid);',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../../', import.meta.url),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
      const redisPid = Number(chunk.toString().trim());
      expect(isAlive(redisPid)).toBe(true);
      // redis-server runs in its --dir; /proc shows it on Linux (CI), elsewhere only the PID is checked.
      const dir = process.platform === 'linux' ? readlinkSync(`/proc/${redisPid}/cwd`) : undefined;
      expect(dir ?? tmpdir()).toContain(tmpdir());
      child.kill('SIGKILL');
      await waitUntilGone(redisPid, 5_000);
      if (dir) await waitUntil(() => !existsSync(dir), 2_000, `${dir} removed`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('startRedisCluster()', () => {
  it('joins 3 masters + 3 replicas, and stop() leaves no process', async () => {
    const cluster = await startRedisCluster({ replicas: 1 });
    const pids = cluster.nodes.map((node) => node.pid);
    try {
      expect(cluster.masters).toHaveLength(3);
      expect(cluster.replicas).toHaveLength(3);
      for (const node of cluster.nodes) {
        const info = parseInfo(await sendCommand(node.port, ['CLUSTER', 'INFO'], 2_000));
        expect(info.get('cluster_state')).toBe('ok');
        expect(info.get('cluster_known_nodes')).toBe('6');
      }
      for (const replica of cluster.replicas) {
        const replication = parseInfo(await sendCommand(replica.port, ['INFO', 'replication'], 2_000));
        expect(replication.get('role')).toBe('slave');
        expect(replication.get('master_link_status')).toBe('up');
      }
    } finally {
      await cluster.stop();
    }
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });
});
