import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', express: 'src/express.ts', koa: 'src/koa.ts', fastify: 'src/fastify.ts', hono: 'src/hono.ts' },
  format: ['esm', 'cjs'],
  // Shared chunks in BOTH formats: without them each CommonJS entry carried its own copy of the
  // core, so `require('ratelock').ConfigError` was not the class `require('ratelock/express')`
  // threw, and each entry had its own process-wide MemoryStore.
  splitting: true,
  dts: true,
  clean: true,
  target: 'node20',
  sourcemap: false,
  // The Lua sources are inlined as text so dist/ never reads files at run time
  // (works when the app is bundled too); lua/*.lua still ship for reading.
  loader: { '.lua': 'text' },
  // Peers are never bundled: an app gets the copy it installed (and no adapter loads another's framework).
  external: ['express', 'koa', 'fastify', 'hono', /^@hono\//, 'ioredis', 'redis', /^@redis\//, '@valkey/valkey-glide', /^@opentelemetry\//],
});
