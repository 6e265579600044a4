/**
 * Runs a script of the repository as a user would (`node --import tsx --import <lua text hook>
 * <script> ...args`), capturing its output; a child that overstays is killed by its PID.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LUA_HOOK = './examples/support/register-lua-text.mjs';
const CHILD_TIMEOUT_MS = 25_000;

export interface ExampleRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `script` is relative to the repository root, e.g. `examples/demo.ts`. */
export function runExample(script: string, args: readonly string[] = [], env: Record<string, string> = {}): Promise<ExampleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', LUA_HOOK, script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, CHILD_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
