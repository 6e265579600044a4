import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { LockGuard } from '../src/core/lock-guard.js';
import { RedisStore } from '../src/stores/redis.js';
const port = 6999;
const server = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await sleep(300);
const client = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 });
const store = new RedisStore({ client });
await store.ready();
const guard = new LockGuard({ store, timeout: 1500 });
server.kill('SIGSTOP');
setTimeout(() => server.kill('SIGCONT'), 400);
const t0 = performance.now();
const all = [];
for (let i = 0; i < 6; i++) {
  all.push(guard.acquire(`k${i}`).then((l) => `ok ${Math.round(performance.now() - t0)}`, (e) => `${e.code} ${e.message} ${Math.round(performance.now() - t0)}`));
  await sleep(60);
}
console.log(await Promise.all(all));
client.disconnect(); server.kill('SIGKILL');
