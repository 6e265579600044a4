/**
 * The package as users get it: `npm pack` the built tree, install the tarball into a scratch app
 * in a temp dir, and use it from there as ESM, as CommonJS and from TypeScript (NodeNext) against
 * the shipped .d.ts. The app runs real code: a RateLimiter of limit 2 on a MemoryStore and on a
 * RedisStore (shared test Redis) must allow, allow, block, which proves the Lua inlined into
 * dist/ works from the tarball.
 *
 * Needs dist/ (`npm run build`; `npm test` builds first). The tarball has no dependencies, so its
 * install needs no network; the peers (ioredis, express, koa) and their types are linked into the
 * scratch app from this repo's node_modules, so no registry is needed either.
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
const ENTRY_POINTS = ['index', 'express', 'koa'] as const;
const BUILD_OUTPUTS = ENTRY_POINTS.flatMap((entry) => ['js', 'cjs', 'd.ts', 'd.cts'].map((ext) => `dist/${entry}.${ext}`));
/** Linked from the repo into the scratch app: the peers a user installs next to ratelock, and their types. */
const LINKED_PACKAGES = ['ioredis', 'express', 'koa', '@types/node', '@types/express', '@types/koa'];
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
  ])('%s: exports the public API and rate-limits on MemoryStore and RedisStore', async (_format, script) => {
    const output = await run(process.execPath, [script], app, { REDIS_URL: redisUrl(), RATELOCK_TEST_ID: uniqueId('package') });
    const report = JSON.parse(output) as Record<string, unknown>;
    expect(report.exports, 'typeof each export').toEqual({
      ratelock: { RateLimiter: 'function', MemoryStore: 'function', RedisStore: 'function', LockGuard: 'function', keys: 'object' },
      express: { rateLimit: 'function', withLock: 'function', rateLimitRoutes: 'function' },
      koa: { rateLimit: 'function', withLock: 'function', rateLimitRoutes: 'function' },
    });
    // Reasons, not just `allowed`: a failing store fails open and would read as "allowed".
    expect(report.memory, 'MemoryStore decisions').toEqual(['allowed', 'allowed', 'limited']);
    expect(report.redis, 'RedisStore decisions').toEqual(['allowed', 'allowed', 'limited']);
  });

  it('type-checks a TypeScript consumer (NodeNext, ESM and CJS) against the shipped .d.ts', async () => {
    expect(await typeCheckApp(app), 'tsc errors in the consumer or in ratelock’s .d.ts').toEqual([]);
  });

  it('type-checks a legacy consumer ("module": "commonjs", node10 resolution, exactOptionalPropertyTypes): subpaths resolve, undefined options are accepted, Koa state is typed', async () => {
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
const { Redis } = require('ioredis');
${RUNTIME_CHECK}
main().catch((err) => { console.error(err); process.exit(1); });
`,
  );
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
 * An Express/Koa app as many are still set up: CommonJS output with node10 resolution (no
 * "exports" support: the subpaths resolve through typesVersions), exactOptionalPropertyTypes, and
 * options read from the environment (string | undefined).
 */
const LEGACY_CONSUMER = `import express from 'express';
import Koa from 'koa';
import { MemoryStore, RateLimiter, type Decision } from 'ratelock';
import { rateLimit, withLock } from 'ratelock/express';
import * as koaAdapter from 'ratelock/koa';

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
`;

/** Shared body of esm.mjs and cjs.cjs: prints a JSON report on stdout. */
const RUNTIME_CHECK = `
const adapterExports = (adapter) => ({
  rateLimit: typeof adapter.rateLimit,
  withLock: typeof adapter.withLock,
  rateLimitRoutes: typeof adapter.rateLimitRoutes,
});

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
    },
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
