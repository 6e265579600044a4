/** Starts one of the bench's TypeScript entry points in its own Node process, as `npm run bench` runs itself. */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnTracked } from './processes.js';

// tsx runs the bench's own TypeScript (ratelock itself is loaded built, see library.ts); the hook
// loads lua/*.lua as text, as the package build does, should a bench file import one.
const LUA_HOOK = fileURLToPath(new URL('../../examples/support/register-lua-text.mjs', import.meta.url));

export function spawnNodeEntry(script: URL, args: readonly string[], cpu: number | undefined, options: SpawnOptions & { nodeFlags?: readonly string[] } = {}): ChildProcess {
  const { nodeFlags = [], ...spawnOptions } = options;
  return spawnTracked(process.execPath, [...nodeFlags, '--import', 'tsx', '--import', LUA_HOOK, fileURLToPath(script), ...args], cpu, spawnOptions);
}

/** Resolves with the first stdout line matching `pattern` (its first group); rejects if the child exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => fail(new Error(`${what} did not get ready within ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = pattern.exec(buffered);
      if (match) done(() => resolve(match[1] ?? match[0]));
    };
    const onExit = (code: number | null) => fail(new Error(`${what} exited (code ${code}) before it was ready`));
    const done = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      settle();
    };
    const fail = (err: Error) => done(() => reject(err));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}
