import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', express: 'src/express.ts', koa: 'src/koa.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  target: 'node20',
  sourcemap: false,
  // The Lua sources are inlined as text so dist/ never reads files at run time
  // (works when the app is bundled too); lua/*.lua still ship for reading.
  loader: { '.lua': 'text' },
  external: ['express', 'koa', 'ioredis'],
});
