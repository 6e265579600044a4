/**
 * Every process the bench starts goes through here, so that none outlives the bench: each child is
 * tracked by PID and stopped by PID (never by name) when it is done, on Ctrl-C / SIGTERM, on an
 * error, and, through the test harness's guard process, even if the bench itself is SIGKILLed.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { forgetProcess, watchProcess } from '../../test/helpers/process-guard.js';

const STOP_GRACE_MS = 3_000;
const running = new Set<ChildProcess>();
// Set once cleanup has begun (Ctrl-C): the bench loop may still be running, but starts nothing new.
let stopping = false;
const cleanups: Array<() => Promise<void>> = [];
// The guard removes this (empty) dir after killing our children; it wants one per watched PID.
const guardDir = mkdtempSync(join(tmpdir(), 'ratelock-bench-'));

/** Spawns `command`, pinned to `cpu` when pinning is available. */
export function spawnTracked(command: string, args: readonly string[], cpu: number | undefined, options: SpawnOptions = {}): ChildProcess {
  if (stopping) throw new Error('the bench is stopping');
  // taskset execs the command: the PID we get is the command's own, as /proc sampling needs.
  const child = cpu === undefined ? spawn(command, args, options) : spawn('taskset', ['-c', String(cpu), command, ...args], options);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  running.add(child);
  watchProcess(pid, guardDir);
  child.once('exit', () => {
    running.delete(child);
    forgetProcess(pid);
  });
  return child;
}

/** Resolves when `child` has exited. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const inTime = await Promise.race([exited(child).then(() => true), sleep(STOP_GRACE_MS, false, { ref: false })]);
  if (!inTime) child.kill('SIGKILL');
  await exited(child);
}

/** Registers an async cleanup (e.g. stopping redis-server) run once at the end or on abort. */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** Stops every tracked child and runs the cleanups, last registered first. Safe to call twice. */
export async function cleanupAll(): Promise<void> {
  stopping = true;
  await Promise.all([...running].map(stopChild));
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => console.error('cleanup failed:', err));
  rmSync(guardDir, { recursive: true, force: true });
}

/** Ctrl-C / SIGTERM stop everything we started before exiting; a synchronous last resort on exit. */
export function installSignalHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the bench's processes…`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** CPU pinning needs `taskset` and at least two CPUs (server on one, load generator and Redis on the other). */
export function pinningAvailable(cpuCount: number): boolean {
  return cpuCount >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Pins an already running process and all its threads (`taskset -a -p`). */
export function pinProcess(pid: number, cpu: number): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`taskset could not pin PID ${pid} to CPU ${cpu}`);
}
