// `node --import tsx --import ./test/lock/support/lua-text-loader.mjs app.ts`: child processes
// that load RedisStore need `.lua` imports as text, as vitest and tsup provide them.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
import { readFile } from 'node:fs/promises';
export async function load(url, context, nextLoad) {
  if (!url.endsWith('.lua')) return nextLoad(url, context);
  const text = await readFile(new URL(url), 'utf8');
  return { format: 'module', source: 'export default ' + JSON.stringify(text) + ';', shortCircuit: true };
}`),
  import.meta.url,
);
