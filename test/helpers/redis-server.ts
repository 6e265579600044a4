/**
 * Throwaway redis-server processes for tests: each one on a free 127.0.0.1 port, with no
 * persistence (`--save ''`, `--appendonly no`), its own temp `--dir` and log file, and stopped by
 * PID (never by name). A guard process kills any server whose starter dies without stopping it
 * (see process-guard.ts), so a crashed test leaves nothing running.
 *
 * Fault tests get the PID-level controls they need: `kill('SIGKILL')` (crash), `kill('SIGSTOP')` /
 * `kill('SIGCONT')` (freeze with the TCP connection still open), `restart()` (same port, empty data).
 * Extra server options go in `args`, e.g. `['--maxmemory', '2mb']` or `['--enable-debug-command', 'yes']`
 * for `DEBUG SLEEP` (off by default on Redis 7).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findFreePort } from './ports.js';
import { forgetProcess, watchProcess } from './process-guard.js';
import { parseInfo, sendCommand } from './resp.js';

export interface RedisServerHandle {
  /** Port on 127.0.0.1; the same after `restart()`. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** PID of the current redis-server process (a new one after `restart()`). */
  readonly pid: number;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s; removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL) to the server. Does nothing once the process has exited. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the server if it runs (also a SIGSTOPped or killed one), then starts a new one on the same port: empty data. */
  restart(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** Extra redis-server arguments, appended after the harness defaults (so they may override them). */
  args?: readonly string[];
  /** Pick a port whose cluster bus port (port + 10000) is free too. */
  clusterBus?: boolean;
  /** A command that runs redis-server, e.g. `['valgrind', '--tool=callgrind']` (bench:script). */
  under?: readonly string[];
}

const REDIS_SERVER = 'redis-server';
/** A start takes ~25 ms here; the bound is for a loaded 2-core CI machine. */
const READY_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 500;
const PROBE_INTERVAL_MS = 20;
const STOP_GRACE_MS = 5_000;
/** Starts retried on another port when a parallel worker took ours between probe and bind. */
const START_ATTEMPTS = 5;
const LOG_TAIL_LINES = 30;

/** Starts a throwaway redis-server and resolves once it answers on its port. */
export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServerHandle> {
  const errors: unknown[] = [];
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await findFreePort({ clusterBus: options.clusterBus ?? false });
    const server = new ThrowawayRedisServer(port, options.args ?? [], options.under ?? []);
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.stop();
      if (!(err instanceof PortTakenError)) throw err;
      errors.push(err);
    }
  }
  throw new AggregateError(errors, `redis-server could not bind a free port in ${START_ATTEMPTS} attempts`);
}

/** The chosen port was bound by someone else before our server could bind it. */
class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
}

class ThrowawayRedisServer implements RedisServerHandle {
  readonly port: number;
  readonly url: string;
  readonly #args: readonly string[];
  readonly #under: readonly string[];
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #pid = 0;
  #exited: Promise<void> = Promise.resolve();

  constructor(port: number, args: readonly string[], under: readonly string[]) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.#args = args;
    this.#under = under;
    this.#dir = mkdtempSync(join(tmpdir(), 'ratelock-redis-'));
  }

  get pid(): number {
    return this.#pid;
  }

  get #running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get #logFile(): string {
    return join(this.#dir, 'redis.log');
  }

  get #outputFile(): string {
    return join(this.#dir, 'redis.out');
  }

  async start(): Promise<void> {
    mkdirSync(this.#dir, { recursive: true });
    // stdout/stderr go to a file: config errors are printed there before the log file opens.
    const output = openSync(this.#outputFile, 'a');
    const [command, ...args] = [...this.#under, REDIS_SERVER, ...this.#commandLine()] as [string, ...string[]];
    const child = spawn(command, args, { stdio: ['ignore', output, output] });
    closeSync(output);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code !== 'ENOENT' ? err : new Error(command === REDIS_SERVER ? MISSING_REDIS_MESSAGE : `${command} is not installed`)),
      );
    });
    // Only a spawned process is ours to stop: a failed spawn never emits 'exit'.
    this.#child = child;
    this.#exited = exited;
    const pid = child.pid!;
    this.#pid = pid;
    watchProcess(pid, this.#dir);
    void exited.then(() => forgetProcess(pid));
    await this.#waitUntilReady();
  }

  async stop(): Promise<void> {
    await this.#stopProcess();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#running) this.#child!.kill(signal);
  }

  async restart(): Promise<void> {
    await this.#stopProcess();
    try {
      await this.start();
    } catch (err) {
      throw new Error(`restart of redis-server on 127.0.0.1:${this.port} failed`, { cause: err });
    }
  }

  #commandLine(): string[] {
    return [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--protected-mode', 'no',
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', this.#dir,
      '--logfile', this.#logFile,
      ...this.#args,
    ];
  }

  async #stopProcess(): Promise<void> {
    const child = this.#child;
    if (child && this.#running) {
      child.kill('SIGTERM');
      child.kill('SIGCONT'); // a SIGSTOPped server acts on the SIGTERM only once it runs again
      const exitedInTime = await Promise.race([this.#exited.then(() => true), sleep(STOP_GRACE_MS, false, { ref: false })]);
      if (!exitedInTime) child.kill('SIGKILL');
    }
    await this.#exited;
  }

  /** Ready = a server answers on our port *and* it is our process (not a parallel worker's that won the bind). */
  async #waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (!this.#running) {
        await this.#exited;
        const log = this.#logTail();
        if (/address already in use/i.test(log)) throw new PortTakenError(`port ${this.port} was taken before redis-server bound it`);
        throw new Error(this.#describeFailure('exited during startup', log));
      }
      const info = await sendCommand(this.port, ['INFO', 'server'], PROBE_TIMEOUT_MS).catch(() => null);
      if (info !== null && parseInfo(info).get('process_id') === String(this.#pid)) return;
      if (Date.now() > deadline) {
        this.#child?.kill('SIGKILL');
        await this.#exited;
        throw new Error(this.#describeFailure(`did not answer within ${READY_TIMEOUT_MS} ms`, this.#logTail()));
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  }

  #describeFailure(what: string, log: string): string {
    const command = [REDIS_SERVER, ...this.#commandLine().map((arg) => (arg === '' ? "''" : arg))].join(' ');
    return `redis-server on 127.0.0.1:${this.port} ${what}.\nCommand: ${command}\nLast lines of its output and log:\n${log || '(empty)'}`;
  }

  /** The end of the server's stdout/stderr and of its log file. */
  #logTail(): string {
    return [this.#outputFile, this.#logFile]
      .filter((file) => existsSync(file))
      .map((file) => readFileSync(file, 'utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n'))
      .filter((text) => text !== '')
      .join('\n');
  }
}

export const MISSING_REDIS_MESSAGE =
  'redis-server was not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; ' +
  'macOS: brew install redis) or run the tests with `npm test`, which installs it when running as root.';
