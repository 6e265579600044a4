/**
 * Makes sure no redis-server outlives the Node process that started it, even when that process
 * dies without running any cleanup (SIGKILL, a crashed vitest worker, an OOM kill).
 *
 * One small guard process per Node process watches a pipe from us: we tell it the PID and temp
 * dir of every server we start ("+pid dir") and stop ("-pid"). When the pipe closes (we exited,
 * however we exited), it SIGKILLs the PIDs still listed and removes their dirs. Normal runs stop
 * their servers themselves (teardown, `handle.stop()`), so the guard then has nothing to do.
 */
import { spawn, type ChildProcess } from 'node:child_process';

// Runs in the guard. It ignores SIGINT/SIGTERM (a Ctrl-C reaches the whole process group) so it
// can still clean up after its parent; it exits as soon as the pipe closes.
const GUARD_SOURCE = `
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
const { rmSync } = require('node:fs');
const dirs = new Map();
let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  let end;
  while ((end = pending.indexOf('\\n')) >= 0) {
    const line = pending.slice(0, end);
    pending = pending.slice(end + 1);
    const space = line.indexOf(' ');
    if (line[0] === '+') dirs.set(Number(line.slice(1, space)), line.slice(space + 1));
    else dirs.delete(Number(line.slice(1)));
  }
});
process.stdin.on('end', () => {
  for (const [pid, dir] of dirs) {
    try { process.kill(pid, 'SIGKILL'); } catch {}
    try { rmSync(dir, { recursive: true, force: true }); } catch {}
  }
  process.exit(0);
});
process.stdin.resume();
`;

let guard: ChildProcess | undefined;

function ensureGuard(): ChildProcess {
  if (guard && guard.exitCode === null && guard.signalCode === null) return guard;
  const child = spawn(process.execPath, ['-e', GUARD_SOURCE], { stdio: ['pipe', 'ignore', 'ignore'], env: {} });
  // Neither the guard nor its pipe may keep our event loop (a vitest worker) alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.stdin?.on('error', () => {}); // the guard died first: nothing left to tell it
  guard = child;
  return child;
}

/** Kill `pid` with SIGKILL and remove `dir` if this process exits while it still runs. */
export function watchProcess(pid: number, dir: string): void {
  ensureGuard().stdin?.write(`+${pid} ${dir}\n`);
}

/** `pid` has exited (or been stopped by us): the guard must forget it, the PID may be reused. */
export function forgetProcess(pid: number): void {
  if (guard && guard.exitCode === null) guard.stdin?.write(`-${pid}\n`);
}
