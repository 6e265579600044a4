/**
 * ratelock as its users run it: the built package (dist/, what `npm pack` ships), never the
 * sources through tsx. tsx keeps function names by wrapping each function expression in a call
 * that defines its `name` every time the function is created, a cost no user pays: ~6 µs of Node
 * CPU per lock acquire + release (23.4–24.4 µs from src/ vs 16.9–18.5 from dist/, 64 callers,
 * interleaved runs). `npm run bench` and `bench:core` build it first (buildLibrary); the types
 * are the sources'.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const built = (entry: string): string => new URL(`../dist/${entry}`, import.meta.url).href;

export const loadCore = (): Promise<typeof import('../src/index.js')> => import(built('index.js'));
export const loadKoa = (): Promise<typeof import('../src/koa.js')> => import(built('koa.js'));
export const loadExpress = (): Promise<typeof import('../src/express.js')> => import(built('express.js'));

/** `npm run build` in the project (~10 s), so that dist/ is the sources being measured. */
export function buildLibrary(): void {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed (exit ${build.status}):\n${build.stdout}\n${build.stderr}`);
}
