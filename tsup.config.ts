import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', express: 'src/express.ts', koa: 'src/koa.ts', fastify: 'src/fastify.ts', hono: 'src/hono.ts' },
  format: ['esm', 'cjs'],
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
