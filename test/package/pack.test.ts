/**
 * The package as users get it: `npm pack` the built tree, install the tarball into a scratch app
 * in a temp dir, and use it from there as ESM, as CommonJS and from TypeScript (NodeNext) against
 * the shipped .d.ts. The app runs real code: a RateLimiter of limit 2 on a MemoryStore and on a
 * RedisStore (shared test Redis) must allow, allow, block, which proves the Lua inlined into
 * dist/ works from the tarball. Every subpath (express, koa, fastify, hono) is imported from ESM
 * and CJS, and none of them loads a framework or a Redis client the app did not ask for: importing
 * `ratelock/express` never loads Fastify, Hono, node-redis or GLIDE (all installed in the app).
 *
 * Needs dist/ (`npm run build`; `npm test` builds first). The tarball has no dependencies, so its
 * install needs no network; the peers (ioredis, express, koa, fastify, hono, @hono/node-server,
 * redis, @valkey/valkey-glide) and their types are linked into the scratch app from this repo's
 * node_modules, so no registry is needed either.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl } from '../helpers/redis.js';
import { uniqueId } from '../helpers/stores.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY_POINTS = ['index', 'express', 'koa', 'fastify', 'hono'] as const;
const BUILD_OUTPUTS = ENTRY_POINTS.flatMap((entry) => ['js', 'cjs', 'd.ts', 'd.cts'].map((ext) => `dist/${entry}.${ext}`));
/** Linked from the repo into the scratch app: the peers a user installs next to ratelock, and their types. */
const LINKED_PACKAGES = [
  'ioredis',
  'express',
  'koa',
  'fastify',
  'hono',
  '@hono/node-server',
  'redis',
  '@valkey/valkey-glide',
  '@types/node',
  '@types/express',
  '@types/koa',
];
/**
 * Packages no ratelock entry point may load on import: every framework (an adapter reads its
 * framework's objects, it never imports it) and the Redis clients other than the one the app passes.
 */
const NEVER_LOADED = ['express', 'koa', 'fastify', 'hono', '@hono/node-server', 'redis', '@redis/client', '@valkey/valkey-glide'];
const COMMAND_TIMEOUT_MS = 90_000;

const execFileAsync = promisify(execFile);

/** Runs a command; on failure the error carries its whole output. Strips npm_* variables so a nested npm does not inherit `npm test`'s config. */
async function run(command: string, args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
  try {
    const { stdout } = await execFileAsync(command, args, {
      cwd,
      env: { ...baseEnv, ...env },
      timeout: COMMAND_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`\`${command} ${args.join(' ')}\` in ${cwd} failed:\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: err });
  }
}

let scratch = '';
let app = '';
let packedFiles: string[] = [];

beforeAll(async () => {
  const missing = BUILD_OUTPUTS.filter((file) => !existsSync(join(ROOT, file)));
  if (missing.length > 0) {
    throw new Error(`the package is not built (missing ${missing.join(', ')}): run \`npm run build\` first (\`npm test\` does)`);
  }
  scratch = mkdtempSync(join(tmpdir(), 'ratelock-package-'));
  const packOutput = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], ROOT);
  const [packed] = JSON.parse(packOutput) as { filename: string; files: { path: string }[] }[];
  if (!packed) throw new Error(`npm pack printed no package:\n${packOutput}`);
  packedFiles = packed.files.map((file) => file.path);

  app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ratelock-scratch-app', version: '1.0.0', private: true }));
  await run('npm', ['install', join(scratch, packed.filename), '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
  // After the install: npm would prune links it did not make.
  for (const name of LINKED_PACKAGES) {
    const link = join(app, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', name), link, 'dir');
  }
  writeAppFiles(app);
}, 4 * COMMAND_TIMEOUT_MS);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('packed tarball', () => {
  it('ships dist (ESM, CJS, .d.ts, .d.cts), lua/*.lua and README.md, and no src/ or test/', () => {
    const expected = [
      ...BUILD_OUTPUTS,
      ...readdirSync(join(ROOT, 'lua')).filter((file) => file.endsWith('.lua')).map((file) => `lua/${file}`),
      'README.md',
      'package.json',
    ];
    expect(packedFiles.filter((file) => /^lua\/.+\.lua$/.test(file)), 'Lua scripts in the tarball').not.toEqual([]);
    expect(expected.filter((file) => !packedFiles.includes(file)), 'files missing from the tarball').toEqual([]);
    expect(packedFiles.filter((file) => /^(src|test)\//.test(file)), 'sources or tests in the tarball').toEqual([]);
  });

  it.each([
    ['ESM import', 'esm.mjs'],
    ['CommonJS require', 'cjs.cjs'],
  ])('%s: exports the public API of every subpath and rate-limits on MemoryStore and RedisStore, Fastify and Hono', async (_format, script) => {
    const output = await run(process.execPath, [script], app, { REDIS_URL: redisUrl(), RATELOCK_TEST_ID: uniqueId('package') });
    const report = JSON.parse(output) as Record<string, unknown>;
    const adapter = { rateLimit: 'function', withLock: 'function', rateLimitRoutes: 'function', RedisStore: 'function' };
    expect(report.exports, 'typeof each export').toEqual({
      ratelock: { RateLimiter: 'function', MemoryStore: 'function', RedisStore: 'function', LockGuard: 'function', keys: 'object' },
      express: adapter,
      koa: adapter,
      fastify: adapter,
      hono: { ...adapter, trustProxy: 'function' },
    });
    expect(report.frameworks, 'statuses of a limit of 1 on Fastify and Hono').toEqual({ fastify: [200, 429], hono: [200, 429] });
    // Reasons, not just `allowed`: a failing store fails open and would read as "allowed".
    expect(report.memory, 'MemoryStore decisions').toEqual(['allowed', 'allowed', 'limited']);
    expect(report.redis, 'RedisStore decisions').toEqual(['allowed', 'allowed', 'limited']);
  });

  it.each([
    ['CommonJS require', 'isolation.cjs', []],
    ['ESM import', 'isolation.mjs', ['--import', './record-resolutions.mjs']],
  ] as const)('%s: no entry point loads a framework, node-redis or GLIDE (ratelock/express never loads Fastify or Hono)', async (_format, script, flags) => {
    const output = await run(process.execPath, [...flags, script], app);
    const loaded = JSON.parse(output) as Record<string, string[]>;
    expect(Object.keys(loaded)).toEqual(['ratelock', 'ratelock/express', 'ratelock/koa', 'ratelock/fastify', 'ratelock/hono']);
    for (const [entry, packages] of Object.entries(loaded)) expect(packages, `packages loaded by importing ${entry}`).toEqual([]);
  });

  // A review found each CommonJS entry carrying its own copy of the core: an adapter's errors were
  // not instances of require('ratelock')'s classes, and each entry had its own default store.
  it.each([
    ['CommonJS require', 'identity.cjs'],
    ['ESM import', 'identity.mjs'],
  ])('%s: every entry point shares one copy of the core (error classes, the process-wide default store)', async (_format, script) => {
    const output = await run(process.execPath, [script], app);
    expect(JSON.parse(output)).toEqual({
      'ratelock/express': { sameClass: true, instanceOfRoot: true },
      'ratelock/koa': { sameClass: true, instanceOfRoot: true },
      'ratelock/fastify': { sameClass: true, instanceOfRoot: true },
      'ratelock/hono': { sameClass: true, instanceOfRoot: true },
      defaultStoreShared: [true, false],
    });
  });

  // A review found the two builds of one install each with its own default store: 4 of 4 passed a limit of 2.
  it('the CommonJS and ESM builds loaded in one process share the process-wide default store', async () => {
    const output = await run(process.execPath, ['dual.mjs'], app);
    expect(JSON.parse(output)).toEqual({ twoCopies: true, allowed: [true, false] });
  });

  it('the isolation check sees a package being loaded (control)', async () => {
    const output = await run(process.execPath, ['--import', './record-resolutions.mjs', 'isolation-control.mjs'], app);
    expect(JSON.parse(output)).toEqual(['fastify', 'hono']);
  });

  it('type-checks a TypeScript consumer (NodeNext, ESM and CJS) against the shipped .d.ts', async () => {
    expect(await typeCheckApp(app), 'tsc errors in the consumer or in ratelock’s .d.ts').toEqual([]);
  });

  it('type-checks a legacy consumer ("module": "commonjs", node10 resolution, exactOptionalPropertyTypes): subpaths resolve, undefined options are accepted, Koa state, Fastify requests and Hono variables are typed', async () => {
    expect(await typeCheckApp(app, 'tsconfig.legacy.json'), 'tsc errors in the legacy consumer or in ratelock’s .d.ts').toEqual([]);
  });
});

/**
 * Runs tsc on the scratch app with skipLibCheck off, so the shipped .d.ts are checked too, and
 * returns the diagnostics in the consumer and in ratelock's .d.ts. Diagnostics inside third-party
 * typings (e.g. @types/koa against a newer content-disposition) are not ours and are left out.
 */
async function typeCheckApp(dir: string, project = 'tsconfig.json'): Promise<string[]> {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  let output: string;
  try {
    output = await run(process.execPath, [tsc, '-p', project], dir);
  } catch (err) {
    output = (err as Error).message;
  }
  const diagnostics = output.split(/\n(?=\S)/).filter((entry) => /\(\d+,\d+\): error TS\d+/.test(entry));
  return diagnostics.filter((entry) => /^(consumer[\w-]*\.[cm]?ts|node_modules\/ratelock\/)/.test(entry.trim()));
}

/** The scratch app: one runtime script per module format, and a TypeScript consumer of both flavours. */
function writeAppFiles(dir: string): void {
  writeFileSync(
    join(dir, 'esm.mjs'),
    `import { RateLimiter, MemoryStore, RedisStore, LockGuard, keys } from 'ratelock';
import * as expressAdapter from 'ratelock/express';
import * as koaAdapter from 'ratelock/koa';
import * as fastifyAdapter from 'ratelock/fastify';
import * as honoAdapter from 'ratelock/hono';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
${RUNTIME_CHECK}
await main();
`,
  );
  writeFileSync(
    join(dir, 'cjs.cjs'),
    `const { RateLimiter, MemoryStore, RedisStore, LockGuard, keys } = require('ratelock');
const expressAdapter = require('ratelock/express');
const koaAdapter = require('ratelock/koa');
const fastifyAdapter = require('ratelock/fastify');
const honoAdapter = require('ratelock/hono');
const Fastify = require('fastify');
const { Hono } = require('hono');
const { Redis } = require('ioredis');
${RUNTIME_CHECK}
main().catch((err) => { console.error(err); process.exit(1); });
`,
  );
  writeIsolationChecks(dir);
  const identity = (load: (name: string) => string) => `
const entries = ['ratelock/express', 'ratelock/koa', 'ratelock/fastify', 'ratelock/hono'];
const root = ${load('ratelock')};
const report = {};
for (const entry of entries) {
  const adapter = ${load('entry')};
  let instanceOfRoot = false;
  try {
    new adapter.RedisStore({ client: 42 });
  } catch (err) {
    instanceOfRoot = err instanceof root.ConfigError && err instanceof root.RatelockError;
  }
  report[entry] = { sameClass: adapter.RedisStore === root.RedisStore, instanceOfRoot };
}
// Two limiters without a store, from two entries: one process-wide store, so they share a log.
const fromRoot = new root.RateLimiter({ limit: 1, window: '1m', prefix: 'identity:' });
const fromAdapter = new (${load('ratelock/express')}).RateLimiter({ limit: 1, window: '1m', prefix: 'identity:' });
report.defaultStoreShared = [(await fromRoot.consume('k')).allowed, (await fromAdapter.consume('k')).allowed];
console.log(JSON.stringify(report));
`;
  // The CommonJS and the ESM build in one process (an app that both requires and imports it).
  writeFileSync(
    join(dir, 'dual.mjs'),
    `import { createRequire } from 'node:module';
const cjs = createRequire(import.meta.url)('ratelock');
const esm = await import('ratelock');
const fromCjs = new cjs.RateLimiter({ limit: 1, window: '1m', prefix: 'dual:' });
const fromEsm = new esm.RateLimiter({ limit: 1, window: '1m', prefix: 'dual:' });
console.log(JSON.stringify({ twoCopies: cjs.RateLimiter !== esm.RateLimiter, allowed: [(await fromCjs.consume('k')).allowed, (await fromEsm.consume('k')).allowed] }));
`,
  );
  writeFileSync(join(dir, 'identity.cjs'), `(async () => {${identity((name) => `require(${name.startsWith('ratelock') ? `'${name}'` : name})`)}})();`);
  writeFileSync(join(dir, 'identity.mjs'), identity((name) => `await import(${name.startsWith('ratelock') ? `'${name}'` : name})`));
  writeFileSync(join(dir, 'consumer.mts'), TYPESCRIPT_CONSUMER);
  writeFileSync(join(dir, 'consumer.cts'), TYPESCRIPT_CONSUMER);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        esModuleInterop: true,
        skipLibCheck: false, // see typeCheckApp()
        types: ['node'],
      },
      files: ['consumer.mts', 'consumer.cts'],
    }),
  );
  writeFileSync(join(dir, 'consumer-legacy.ts'), LEGACY_CONSUMER);
  writeFileSync(
    join(dir, 'tsconfig.legacy.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'commonjs',
        moduleResolution: 'node10',
        target: 'ES2022',
        strict: true,
        exactOptionalPropertyTypes: true,
        noEmit: true,
        esModuleInterop: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files: ['consumer-legacy.ts'],
    }),
  );
}

/**
 * What each entry point loads, as `{ [entry]: [packages of NEVER_LOADED] }`, imported one after
 * another in one process (each entry is charged with what was new after its import). CommonJS
 * reads `require.cache`; ESM has no module cache to read, so a module hook
 * (record-resolutions.mjs) records every resolution. The control script imports Fastify and Hono
 * itself, to show that the recording sees them.
 */
function writeIsolationChecks(dir: string): void {
  const entries = JSON.stringify(['ratelock', 'ratelock/express', 'ratelock/koa', 'ratelock/fastify', 'ratelock/hono']);
  const packagesIn = `const NEVER_LOADED = ${JSON.stringify(NEVER_LOADED)};
/** The NEVER_LOADED packages among module paths or file URLs. */
const packagesIn = (paths) => [...new Set(paths.flatMap((path) => {
  const text = String(path);
  const at = text.lastIndexOf('node_modules/');
  if (at === -1) return [];
  const parts = text.slice(at + 'node_modules/'.length).split('/');
  const name = parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0];
  return NEVER_LOADED.includes(name) ? [name] : [];
}))].sort();
`;
  const report = (load: string, loaded: string) => `const report = {};
let seen = [];
for (const entry of ${entries}) {
  ${load}
  const now = packagesIn(${loaded});
  report[entry] = now.filter((name) => !seen.includes(name));
  seen = now;
}
console.log(JSON.stringify(report));
`;
  writeFileSync(join(dir, 'isolation.cjs'), packagesIn + report('require(entry);', 'Object.keys(require.cache)'));
  writeFileSync(
    join(dir, 'isolation.mjs'),
    packagesIn + report('await import(entry);\n  await globalThis.resolutionsSettled();', 'globalThis.resolved'),
  );
  writeFileSync(
    join(dir, 'isolation-control.mjs'),
    `${packagesIn}await import('ratelock/express');
await import('fastify');
await import('hono');
await globalThis.resolutionsSettled();
console.log(JSON.stringify(packagesIn(globalThis.resolved)));
`,
  );
  writeFileSync(
    join(dir, 'record-resolutions.mjs'),
    `import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
globalThis.resolved = [];
let flushed = () => undefined;
port1.on('message', (message) => {
  if (typeof message === 'string') globalThis.resolved.push(message);
  else flushed();
});
port1.unref();
/** Resolves once every resolution posted so far has arrived (messages on a port keep their order). */
globalThis.resolutionsSettled = () =>
  new Promise((resolve) => {
    port1.ref();
    flushed = () => {
      port1.unref();
      resolve();
    };
    port1.postMessage('flush');
  });
register('./resolution-hook.mjs', import.meta.url, { data: { port: port2 }, transferList: [port2] });
`,
  );
  writeFileSync(
    join(dir, 'resolution-hook.mjs'),
    `let port;
export function initialize(data) {
  port = data.port;
  port.on('message', () => port.postMessage({ flushed: true }));
  port.unref();
}
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  port.postMessage(result.url);
  return result;
}
`,
  );
}

/**
 * An Express/Koa app as many are still set up: CommonJS output with node10 resolution (no
 * "exports" support: the subpaths resolve through typesVersions), exactOptionalPropertyTypes, and
 * options read from the environment (string | undefined).
 */
const LEGACY_CONSUMER = `import express from 'express';
import Koa from 'koa';
import { MemoryStore, RateLimiter, type Decision } from 'ratelock';
import { rateLimit, withLock } from 'ratelock/express';
import * as koaAdapter from 'ratelock/koa';
import Fastify from 'fastify';
import { Hono } from 'hono';
import * as fastifyAdapter from 'ratelock/fastify';
import * as honoAdapter from 'ratelock/hono';

const store = process.env.NO_STORE === undefined ? new MemoryStore() : undefined;
const app = express();
app.use(rateLimit({ store, limit: 100, window: '1m', prefix: process.env.PREFIX, timeout: process.env.TIMEOUT }));
app.post('/orders', withLock({ store: process.env.SHARED === '1' ? store : undefined, key: (req) => String(req.query.id) }), (req, res) => {
  const decision: Decision | undefined = req.rateLimit;
  res.json({ remaining: decision?.remaining, fence: req.lock?.fence });
});

const koa = new Koa();
koa.use(koaAdapter.rateLimit({ store, limit: 10, window: '1s', prefix: process.env.PREFIX }));
koa.use(koaAdapter.withLock({ store, key: (ctx) => ctx.path }));
koa.use((ctx) => {
  const remaining: number | undefined = ctx.state.rateLimit?.remaining;
  const fence: number | undefined = ctx.state.lock?.fence;
  // @ts-expect-error ctx.state.rateLimit is a Decision, not any
  const wrong: string = ctx.state.rateLimit!.remaining;
  ctx.body = { remaining, fence, wrong };
});

export const limiter = new RateLimiter({ store, limit: 2, window: '1m', prefix: process.env.PREFIX, logger: undefined });

export async function legacyFastify(): Promise<void> {
  const app = Fastify();
  // Fastify's own register options type \`prefix\` (its route prefix) as a string: a key prefix given there must be one.
  await app.register(fastifyAdapter.rateLimit, { store, limit: 10, window: '1s', prefix: process.env.PREFIX ?? 'rl:', global: process.env.ALL === undefined ? undefined : true });
  app.get('/x', { config: { rateLimit: { limit: 2, window: '1m', prefix: process.env.PREFIX } } }, async (request) => request.rateLimit?.remaining ?? null);
  app.post('/y', { preHandler: fastifyAdapter.withLock({ store, key: (request) => request.url, ttl: process.env.TTL }) }, async (request) => request.lock?.fence ?? null);
}

const legacyHono = new Hono<honoAdapter.RatelockEnv>();
legacyHono.use(honoAdapter.rateLimit({ store, limit: 10, window: '1s', prefix: process.env.PREFIX }));
legacyHono.get('/', (c) => c.json({ remaining: c.get('rateLimit')?.remaining ?? null, fence: c.get('lock')?.fence ?? null }));
`;

/** Shared body of esm.mjs and cjs.cjs: prints a JSON report on stdout. */
const RUNTIME_CHECK = `
const adapterExports = (adapter) => ({
  rateLimit: typeof adapter.rateLimit,
  withLock: typeof adapter.withLock,
  rateLimitRoutes: typeof adapter.rateLimitRoutes,
  RedisStore: typeof adapter.RedisStore,
  ...(adapter.trustProxy === undefined ? {} : { trustProxy: typeof adapter.trustProxy }),
});

/** Two requests through a limit of 1 on a Fastify app (the plugin from the tarball) and on a Hono app. */
async function frameworkStatuses() {
  const stores = [new MemoryStore(), new MemoryStore()];
  const fastify = Fastify();
  await fastify.register(fastifyAdapter.rateLimit, { store: stores[0], limit: 1, window: '1m' });
  fastify.get('/', async () => 'ok');
  const hono = new Hono();
  hono.use(honoAdapter.rateLimit({ store: stores[1], limit: 1, window: '1m', key: () => 'client' }));
  hono.get('/', (c) => c.text('ok'));
  const statuses = { fastify: [], hono: [] };
  for (let i = 0; i < 2; i++) {
    statuses.fastify.push((await fastify.inject('/')).statusCode);
    statuses.hono.push((await hono.request('/')).status);
  }
  await fastify.close();
  for (const store of stores) store.close();
  return statuses;
}

async function consumeThree(store, id) {
  const limiter = new RateLimiter({ store, limits: [{ limit: 2, window: '1m' }] });
  const reasons = [];
  for (let i = 0; i < 3; i++) {
    const decision = await limiter.consume(id);
    reasons.push(decision.error ? decision.reason + ': ' + decision.error.message : decision.reason);
  }
  return reasons;
}

async function main() {
  const report = {
    exports: {
      ratelock: { RateLimiter: typeof RateLimiter, MemoryStore: typeof MemoryStore, RedisStore: typeof RedisStore, LockGuard: typeof LockGuard, keys: typeof keys },
      express: adapterExports(expressAdapter),
      koa: adapterExports(koaAdapter),
      fastify: adapterExports(fastifyAdapter),
      hono: adapterExports(honoAdapter),
    },
    frameworks: await frameworkStatuses(),
  };
  const memory = new MemoryStore();
  report.memory = await consumeThree(memory, 'client-1');
  memory.close?.();
  const client = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    await client.ping(); // RedisStore refuses a client that is not ready yet
    report.redis = await consumeThree(new RedisStore({ client }), process.env.RATELOCK_TEST_ID);
  } finally {
    client.disconnect();
  }
  console.log(JSON.stringify(report));
}
`;

/** The Public API examples of DESIGN.md, as a user would write them (with passport-style \`req.user\` typing). */
const TYPESCRIPT_CONSUMER = `import { Redis } from 'ioredis';
import express from 'express';
import Koa from 'koa';
import { RedisStore, MemoryStore, RateLimiter, LockGuard, keys, type Decision } from 'ratelock';
import { rateLimit, withLock, rateLimitRoutes } from 'ratelock/express';
import * as koaAdapter from 'ratelock/koa';
import Fastify, { type FastifyRequest } from 'fastify';
import { Hono, type Context } from 'hono';
import * as fastifyAdapter from 'ratelock/fastify';
import * as honoAdapter from 'ratelock/hono';

declare global {
  namespace Express {
    interface Request {
      user?: { id: string };
    }
  }
}

const store = new RedisStore({ client: new Redis('redis://127.0.0.1:6379', { lazyConnect: true }) });

const app = express();
app.use(rateLimit({ store, limit: 100, window: '1m' }));
app.post('/login', rateLimit({ store, limit: 5, window: '15m', key: [keys.header('x-api-key'), keys.ip()] }), (_req, res) => {
  res.end();
});
app.get(
  '/search',
  rateLimit({
    store,
    limits: [{ limit: 10, window: '1s' }, { limit: 500, window: '1h' }],
    key: keys.user((req) => req.user?.id),
  }),
  (req, res) => {
    const decision: Decision | undefined = req.rateLimit;
    res.json({ remaining: decision?.remaining });
  },
);
app.post('/orders', withLock({ store, key: (req) => \`cart:\${req.body.cartId}\`, ttl: '30s' }), (_req, res) => {
  res.end();
});
app.post('/payments', withLock({ store, replay: { ttl: '24h' } }), (_req, res) => {
  res.end();
});
app.use(
  rateLimitRoutes({
    store,
    user: (req) => req.user?.id,
    routes: [
      { route: 'POST /login', limit: 5, window: '15m', key: 'ip' },
      { route: '/api/*', limit: 1000, window: '1h', key: ['header:x-api-key', 'ip'] },
    ],
  }),
);

const koa = new Koa();
koa.use(koaAdapter.rateLimit({ store: new MemoryStore(), limit: 10, window: '1s' }));
koa.use(koaAdapter.withLock({ store, key: (ctx) => ctx.path, ttl: '30s' }));

export async function fastifyApp() {
  const app = Fastify();
  await app.register(fastifyAdapter.rateLimit, { store, limit: 100, window: '1m', hook: 'onRequest' });
  await app.register(fastifyAdapter.rateLimitRoutes, { store, routes: [{ route: 'POST /login', limit: 5, window: '15m', key: 'ip' }] });
  app.post('/login', { config: { rateLimit: { limit: 5, window: '15m', key: [keys.header('x-api-key'), keys.ip()] } } }, async (request) => ({
    remaining: request.rateLimit?.remaining,
  }));
  app.get('/health', { config: { rateLimit: false } }, async () => 'ok');
  app.post<{ Body: { cartId: string } }>(
    '/orders',
    { preHandler: fastifyAdapter.withLock<{ Body: { cartId: string } }>({ store, key: (request) => \`cart:\${request.body.cartId}\`, ttl: '30s' }) },
    async (request) => ({ fence: request.lock?.fence }),
  );
  app.post('/payments', { preHandler: fastifyAdapter.withLock({ store, replay: { ttl: '24h' } }) }, async () => 'paid');
  app.post('/refunds/:id', fastifyAdapter.withLock({ store, key: (request) => (request.params as { id: string }).id }, async (request) => ({ fence: request.lock?.fence })));
  return app;
}

// @ts-expect-error request.rateLimit is a Decision, not any
export const wrongFastify = (request: FastifyRequest): string => request.rateLimit!.remaining;

const hono = new Hono<honoAdapter.RatelockEnv>();
hono.use(honoAdapter.trustProxy({ hops: 1 }));
hono.use(honoAdapter.rateLimit({ store, limit: 100, window: '1m', key: [keys.header('x-api-key'), keys.ip()] }));
hono.use(honoAdapter.rateLimitRoutes({ store, routes: [{ route: '/api/*', limit: 1000, window: '1h' }] }));
hono.post('/payments', honoAdapter.withLock({ store, replay: { ttl: '24h' } }), (c) => c.json({ fence: c.get('lock')?.fence, remaining: c.get('rateLimit')?.remaining }));
hono.post('/refunds/:id', honoAdapter.withLock({ store, key: (c) => c.req.param('id') }, (c) => c.json({ fence: c.get('lock')?.fence })));
export const honoRemaining = (c: Context<honoAdapter.RatelockEnv>): number | undefined => c.get('rateLimit')?.remaining;
// @ts-expect-error c.get('rateLimit') is a Decision, not any
export const wrongHono = (c: Context<honoAdapter.RatelockEnv>): string => c.get('rateLimit')!.remaining;

export async function core(): Promise<boolean> {
  const limiter = new RateLimiter({ store: new MemoryStore(), limits: [{ limit: 2, window: '1m' }] });
  const first: Decision = await limiter.consume('client-1', { cost: 1 });
  const guard = new LockGuard({ store, ttl: '30s' });
  const lease = await guard.acquire('job-1', { wait: 0 });
  const fence: number = lease.fence;
  await lease.release();
  return first.allowed && fence > 0;
}
`;
