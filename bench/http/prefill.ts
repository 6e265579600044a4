/**
 * Block path: spends the one request every key is allowed (limit 1 per hour) before the
 * measurement, so that every measured request is refused.
 */
import { Agent, request } from 'node:http';
import { HEADER } from './cases.js';

const CONCURRENCY = 50;

export async function spendEveryKey(port: number, keyCount: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const worker = async () => {
    while (next < keyCount) await get(agent, port, `k${next++}`);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, keyCount) }, worker));
  } finally {
    agent.destroy();
  }
}

function get(agent: Agent, port: number, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers: { [HEADER]: key } }, (res) => {
      res.resume();
      res.once('end', resolve);
    });
    req.once('error', reject);
    req.end();
  });
}
