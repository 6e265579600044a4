/**
 * One bench server per process (so each case has its own heap, JIT and CPU account):
 * `node --import tsx --import ./examples/support/register-lua-text.mjs bench/http/server.ts <case id> <redis url>`.
 * Listens on a free 127.0.0.1 port and prints `ready <port>` once it (and its Redis client) is ready.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { caseById } from './cases.js';

const [caseId, redisUrl] = process.argv.slice(2);
if (!caseId || !redisUrl) throw new Error('usage: server.ts <case id> <redis url>');
const c = caseById(caseId);

const listener: RequestListener =
  c.framework === 'koa' ? (await (await import('./koa-app.js')).koaApp(c, redisUrl)).callback() : await (await import('./express-app.js')).expressApp(c, redisUrl);

const server = createServer(listener);
// Exit at once: the driver has stopped sending, and --cpu-prof writes its profile on exit.
process.once('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  console.log(`ready ${(server.address() as AddressInfo).port}`);
});
