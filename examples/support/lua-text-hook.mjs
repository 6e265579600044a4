/**
 * Node module hook: a `.lua` import is its source text (`export default "<source>"`), as vitest's
 * plugin and tsup's `loader` make it. Registered by `register-lua-text.mjs`.
 */
import { readFile } from 'node:fs/promises';

export async function load(url, context, nextLoad) {
  if (!url.endsWith('.lua')) return nextLoad(url, context);
  const source = await readFile(new URL(url), 'utf8');
  return { format: 'module', source: `export default ${JSON.stringify(source)};`, shortCircuit: true };
}
