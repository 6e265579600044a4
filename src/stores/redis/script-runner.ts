/**
 * Runs ratelock's scripts on a Redis client: `FCALL` of the Function library, loaded lazily on the
 * first call and reloaded when a server lost it (restart without persistence, FUNCTION FLUSH, a new
 * empty master); or, on servers without Functions (Redis < 7), `EVALSHA` with an `EVAL` fallback
 * on `NOSCRIPT`. Only those two errors are handled; every other error is rethrown (as StoreError).
 */
import { StoreError } from '../../core/errors.js';
import type { Binding, ClockArgument } from './bindings.js';
import { ReadinessGate, errorMessage, serverName, type RedisArgument, type RedisClientLike, type RedisCommandClient } from './client.js';
import type { Script } from './scripts.js';
import type { StoreTestSettings } from '../test-hooks.js';

/** `'function'`: FCALL (Redis ≥ 7); `'eval'`: EVALSHA + EVAL on NOSCRIPT. */
export type ScriptMode = 'function' | 'eval';

/** The Function library to load: its name (versioned) and its source. */
export interface Library {
  readonly name: string;
  readonly source: string;
}

const FUNCTION_NOT_FOUND = 'ERR Function not found';
const NOSCRIPT = 'NOSCRIPT';
const LIBRARY_EXISTS = /^ERR Library '.*' already exists/;
/** What a server without the FUNCTION command answers (Redis < 7, and look-alikes). */
const UNKNOWN_COMMAND = /^ERR unknown command/i;

export class ScriptRunner {
  private mode: ScriptMode;
  /** True once the library was loaded by this process (always true in eval mode). */
  private loaded: boolean;
  /** The load in progress, shared by every caller (single-flight). */
  private loading: Promise<void> | undefined;
  /** Completed loads; a call that failed before the latest load just retries. */
  private loadGeneration = 0;
  /** Fails calls fast while a once-ready client is reconnecting. */
  private readonly readiness: ReadinessGate;
  /** The test clock, if any: its time goes to the scripts instead of '' (Redis `TIME`). */
  private readonly clock: (() => number) | undefined;
  /** `FUNCTION LOAD`s this process sent, per server (`host:port`): for tests and diagnostics. */
  readonly libraryLoads = new Map<string, number>();

  constructor(
    private readonly client: RedisClientLike,
    private readonly library: Library,
    /** Only tests set these (src/stores/testing.ts). */
    test: StoreTestSettings = {},
  ) {
    this.mode = test.mode ?? 'function';
    this.clock = test.clock;
    this.readiness = new ReadinessGate(client);
    this.loaded = this.mode === 'eval';
  }

  /** The mode in use (switches to `'eval'` if the server turns out not to know FUNCTION). */
  get currentMode(): ScriptMode {
    return this.mode;
  }

  /**
   * Calls `binding`'s Lua function with `input` and returns its parsed reply. The arguments are
   * read from `input` now, before any wait, into one array of this call's own:
   * `[function name | SHA1, numkeys, ...KEYS, ...ARGV]`. `via`: one Cluster master's own
   * connection, for a call that names no key to route by (cross-slot batches); else the client.
   */
  async run<Input, Result>(binding: Binding<Input, Result>, input: Input, via?: RedisCommandClient): Promise<Result> {
    const args: RedisArgument[] = ['', 0]; // slot 0: filled for the mode in use when sent
    binding.appendKeys(args, input);
    args[1] = args.length - 2;
    binding.appendArgv(args, input, this.clockArgument());
    const connecting = this.readiness.whenSendable();
    if (connecting !== undefined) await connecting;
    if (!this.loaded) await this.load(false);
    const { script, binary } = binding;
    const generation = this.loadGeneration;
    const target = via ?? this.client;
    let reply: unknown;
    try {
      reply = await this.send(target, script, args, binary);
    } catch (err) {
      reply = await this.recover(target, script, args, binary, err, generation);
    }
    return binding.parse(reply, input);
  }

  /**
   * Waits for the connection (by the client's `ready` event, so also without an offline queue),
   * then loads the library. Optional: the first call loads it too.
   */
  async ready(): Promise<void> {
    try {
      await this.readiness.connected();
      await this.client.call('PING', []);
      this.readiness.markReady();
    } catch (err) {
      throw new StoreError(`Redis is not reachable: ${errorMessage(err)}`, { cause: err });
    }
    if (!this.loaded) await this.load(false);
  }

  /** The test clock's time, or '' for Redis `TIME`. */
  private clockArgument(): ClockArgument {
    return this.clock === undefined ? '' : this.clock();
  }

  /** Sends `args` (this call's own array) to `target` with slot 0 set for the current mode. */
  private send(target: RedisCommandClient, script: Script, args: RedisArgument[], binary: boolean): Promise<unknown> {
    const command = this.mode === 'function' ? 'FCALL' : 'EVALSHA';
    args[0] = this.mode === 'function' ? script.functionName : script.sha1;
    return binary ? target.callBuffer(command, args) : target.call(command, args);
  }

  private async recover(target: RedisCommandClient, script: Script, args: RedisArgument[], binary: boolean, err: unknown, generation: number): Promise<unknown> {
    const message = errorMessage(err);
    try {
      if (this.mode === 'function' && message.startsWith(FUNCTION_NOT_FOUND)) {
        // Reload unless a load finished since this call was sent (it then missed it by a hair).
        if (this.loadGeneration === generation) await this.load(true);
        else if (this.loading) await this.loading;
        return await this.send(target, script, args, binary);
      }
      if (this.mode === 'eval' && message.startsWith(NOSCRIPT)) {
        args[0] = script.evalSource;
        return await (binary ? target.callBuffer('EVAL', args) : target.call('EVAL', args));
      }
    } catch (retryErr) {
      throw toStoreError(script, retryErr);
    }
    throw toStoreError(script, err);
  }

  /**
   * Single-flight load. The first load replaces the library on every server (this process's code
   * wins over a stale copy of the same version); a reload only loads where it is missing, so one
   * master restarted empty costs one FUNCTION LOAD on that master alone.
   */
  private load(reload: boolean): Promise<void> {
    this.loading ??= this.loadEverywhere(reload).then(
      () => {
        this.loaded = true;
        this.loadGeneration++;
        this.loading = undefined;
      },
      (err: unknown) => {
        this.loading = undefined;
        throw err instanceof StoreError ? err : new StoreError(`loading the Redis Function library ${this.library.name} failed: ${errorMessage(err)}`, { cause: err });
      },
    );
    return this.loading;
  }

  private async loadEverywhere(reload: boolean): Promise<void> {
    let servers = this.client.isCluster && this.client.nodes ? this.client.nodes('master') : [this.client];
    if (servers.length === 0 && this.client.nodes) {
      // A Cluster client still discovering its nodes: a PING waits until it knows them
      // (the caller's timeout budget bounds the wait).
      await this.client.call('PING', []);
      servers = this.client.nodes('master');
    }
    if (servers.length === 0) throw new StoreError('Redis Cluster client knows no master yet; the call was not sent');
    await Promise.all(servers.map((server) => this.loadOn(server, reload)));
  }

  private async loadOn(server: RedisCommandClient, reload: boolean): Promise<void> {
    if (this.mode === 'eval') return;
    try {
      if (reload && (await hasLibrary(server, this.library.name))) return;
      await server.call('FUNCTION', reload ? ['LOAD', this.library.source] : ['LOAD', 'REPLACE', this.library.source]);
      const name = serverName(server);
      this.libraryLoads.set(name, (this.libraryLoads.get(name) ?? 0) + 1);
    } catch (err) {
      const message = errorMessage(err);
      if (UNKNOWN_COMMAND.test(message)) this.mode = 'eval'; // Redis < 7: EVALSHA from now on
      else if (!LIBRARY_EXISTS.test(message)) throw err; // another process loaded it meanwhile: fine
    }
  }
}

async function hasLibrary(server: RedisCommandClient, name: string): Promise<boolean> {
  const list = await server.call('FUNCTION', ['LIST', 'LIBRARYNAME', name]);
  // LIBRARYNAME matches by pattern (a prefix here): look for the exact name.
  return Array.isArray(list) && list.some((library) => Array.isArray(library) && library[1] === name);
}

function toStoreError(script: Script, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError(`Redis script ${script.operation} failed: ${errorMessage(err)}`, { cause: err });
}
