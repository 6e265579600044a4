/**
 * Runs ratelock's scripts on a Redis client (any of clients/, through the view of client.ts):
 * `FCALL` of the Function library, loaded lazily on the first call and reloaded when a server lost
 * it (restart without persistence, FUNCTION FLUSH, a new empty master); or, on servers without
 * Functions (Redis < 7) or where the ACL denies FUNCTION LOAD, `EVALSHA` with an `EVAL` fallback
 * on `NOSCRIPT`. Only those two errors are handled; every other error is rethrown (as StoreError).
 *
 * Every call passes two gates first: not connected → fail fast (ReadinessGate); connected but not
 * answering → fail fast, one probe at a time (InFlightGate, one per server).
 */
import { StoreError } from '../../core/errors.js';
import type { Binding, ClockArgument } from './bindings.js';
import {
  InFlightGate,
  ReadinessGate,
  SilenceAllowance,
  errorMessage,
  firstKeyOf,
  isErrorReply,
  scriptFailure,
  serverName,
  type RedisArgument,
  type RedisConnection,
  type StoreClient,
} from './client.js';
import { keySlot } from './hash-tag.js';
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
const READONLY = 'READONLY';
const NOPERM = 'NOPERM';
const LIBRARY_EXISTS = /^ERR Library '.*' already exists/;
/** What a server without the FUNCTION command answers (Redis < 7, and look-alikes). */
const UNKNOWN_COMMAND = /^ERR unknown command/i;
/**
 * A server that refused FUNCTION LOAD as a replica (READONLY) is not asked again for this long:
 * meanwhile calls fail at once with that error instead of re-sending the whole library each time.
 */
export const LOAD_REFUSAL_MS = 1_000;

/** The load in progress, with its place in the order loads started. */
interface Loading {
  readonly promise: Promise<void>;
  readonly index: number;
}

export class ScriptRunner {
  private mode: ScriptMode;
  /** True once the library was loaded by this process (always true in eval mode). */
  private loaded: boolean;
  /** The load in progress, shared by every caller (single-flight). */
  private loading: Loading | undefined;
  /** Loads started so far: a call that meets a lost library waits for one started after it was sent. */
  private loadsStarted = 0;
  /** Loads completed so far: a call sent before the latest completed one may just have missed it. */
  private loadsCompleted = 0;
  /** Servers that refused FUNCTION LOAD as replicas: until when, and their error. */
  private readonly loadRefusals = new Map<string, { until: number; error: StoreError }>();
  /** Fails calls fast while a once-ready client is reconnecting. */
  private readonly readiness: ReadinessGate;
  /** Fails calls fast while their server does not answer (standalone: this one; Cluster: per master). */
  private readonly gate: InFlightGate;
  private readonly gates = new Map<string, InFlightGate>();
  /** How long the gates let a connection stay silent: the longest call budget of the store's guards. */
  readonly silence = new SilenceAllowance();
  /** The test clock, if any: its time goes to the scripts instead of '' (Redis `TIME`). */
  private readonly clock: (() => number) | undefined;
  /** `FUNCTION LOAD`s this process sent, per server (`host:port`): for tests and diagnostics. */
  readonly libraryLoads = new Map<string, number>();

  constructor(
    private readonly client: StoreClient,
    private readonly library: Library,
    /** Only tests set these (src/stores/testing.ts). */
    test: StoreTestSettings = {},
  ) {
    this.mode = test.mode ?? 'function';
    this.clock = test.clock;
    this.readiness = new ReadinessGate(client.connection, client.closedByApp);
    this.gate = new InFlightGate(serverName(client.connection), this.silence);
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
  async run<Input, Result>(binding: Binding<Input, Result>, input: Input, via?: RedisConnection): Promise<Result> {
    const args: RedisArgument[] = ['', 0]; // slot 0: filled for the mode in use when sent
    binding.appendKeys(args, input);
    args[1] = args.length - 2;
    binding.appendArgv(args, input, this.clockArgument());
    const connecting = this.readiness.whenSendable();
    if (connecting !== undefined) await connecting;
    if (!this.loaded) await this.load(false);
    const { script, binary } = binding;
    const target = via ?? this.client.connection;
    const gate = this.client.cluster === undefined ? this.gate : this.clusterGate(via, args);
    const started = this.loadsStarted;
    const completed = this.loadsCompleted;
    const probe = gate.enter();
    let reply: unknown;
    try {
      const sent = this.send(target, script, args, binary);
      if (binding.writtenAtOnce) target.flushWrites?.();
      reply = await sent;
      gate.leave(true, probe);
    } catch (err) {
      gate.leave(isErrorReply(err), probe);
      reply = await this.recover(gate, target, script, args, binary, err, started, completed);
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
      await this.client.connection.call('PING', []);
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

  /**
   * The gate of the connection a call to `via`, or keyed by `key`, goes to (on Cluster, its
   * master's) when it is stalled (InFlightGate.checkStalled), else undefined.
   */
  stalledGate(via: RedisConnection | undefined, key: string): InFlightGate | undefined {
    const gate = this.client.cluster === undefined ? this.gate : this.gates.get(this.clusterGateName(via, key));
    return gate?.checkStalled() === true ? gate : undefined;
  }

  /** The gate of the master a Cluster call goes to: `via`'s, or its first key's master by the slot map. */
  private clusterGate(via: RedisConnection | undefined, args: readonly RedisArgument[]): InFlightGate {
    const name = this.clusterGateName(via, firstKeyOf(args));
    let gate = this.gates.get(name);
    if (gate === undefined) this.gates.set(name, (gate = new InFlightGate(name, this.silence)));
    return gate;
  }

  /** The gate of `via`, else of the master of `key`'s slot by the slot map. */
  private clusterGateName(via: RedisConnection | undefined, key: RedisArgument | undefined): string {
    if (via !== undefined) return serverName(via);
    if (key !== undefined) return this.client.cluster!.masterOf(keySlot((this.client.keyPrefix ?? '') + key.toString())) ?? 'cluster';
    return 'cluster';
  }

  /** Sends `args` (this call's own array) to `target` with slot 0 set for the current mode. */
  private send(target: RedisConnection, script: Script, args: RedisArgument[], binary: boolean): Promise<unknown> {
    const command = this.mode === 'function' ? 'FCALL' : 'EVALSHA';
    args[0] = this.mode === 'function' ? script.functionName : script.sha1;
    return binary ? target.callBuffer(command, args) : target.call(command, args);
  }

  /** `send` through the in-flight gate (the recovery path: rare, so it may cost a promise). */
  private async sendGated(gate: InFlightGate, send: () => Promise<unknown>): Promise<unknown> {
    const probe = gate.enter();
    let replied = false;
    try {
      const reply = await send();
      replied = true;
      return reply;
    } catch (err) {
      replied = isErrorReply(err);
      throw err;
    } finally {
      gate.leave(replied, probe);
    }
  }

  /**
   * A call failed with `err`. `started` / `completed`: the loads started and completed when it was
   * sent. A lost library (FUNCTION FLUSH, a restart, a new master) is reloaded and the call resent
   * once as FCALL; should the library vanish again before that resend runs (FUNCTION FLUSH after
   * FUNCTION FLUSH), the call is sent as EVAL of its own code (`flaggedEvalSource`), which carries
   * what it runs and so cannot miss it: a call never fails because the library keeps vanishing,
   * and never waits for more than one reload. Any other failure is thrown as a StoreError, lasting
   * when the client is closed by then (ReadinessGate.failureOf).
   */
  private async recover(
    gate: InFlightGate,
    target: RedisConnection,
    script: Script,
    args: RedisArgument[],
    binary: boolean,
    err: unknown,
    started: number,
    completed: number,
  ): Promise<unknown> {
    const message = errorMessage(err);
    try {
      if (this.mode === 'function' && message.startsWith(FUNCTION_NOT_FOUND)) {
        // A load that completed after this call was sent may have missed it by a hair: resend
        // first. Otherwise wait for a load that started after it was sent (its FUNCTION LIST
        // then ran after this call on the same connection, so after the loss this call saw).
        if (this.loadsCompleted === completed) await this.reloadAfter(started);
        try {
          return await this.sendGated(gate, () => this.send(target, script, args, binary));
        } catch (retryErr) {
          if (!errorMessage(retryErr).startsWith(FUNCTION_NOT_FOUND)) throw retryErr;
        }
        return await this.sendGated(gate, () => this.sendSource(target, script.flaggedEvalSource, args, binary));
      }
      if (this.mode === 'eval' && message.startsWith(NOSCRIPT)) {
        return await this.sendGated(gate, () => this.sendSource(target, script.evalSource, args, binary));
      }
    } catch (retryErr) {
      throw this.readiness.failureOf(toStoreError(script, retryErr));
    }
    throw this.readiness.failureOf(toStoreError(script, err));
  }

  /** Sends `args` as `EVAL source …`: the call carries its code. */
  private sendSource(target: RedisConnection, source: string, args: RedisArgument[], binary: boolean): Promise<unknown> {
    args[0] = source;
    return binary ? target.callBuffer('EVAL', args) : target.call('EVAL', args);
  }

  /** Resolves once a load that started after `started` loads had started has completed. */
  private async reloadAfter(started: number): Promise<void> {
    const current = this.loading;
    if (current !== undefined && current.index > started) return current.promise;
    if (current !== undefined) await current.promise.catch(() => undefined);
    // Now the load in progress, if any, started after this one ended: after `started`.
    return this.load(true);
  }

  /**
   * Single-flight load. The first load replaces the library on every server (this process's code
   * wins over a stale copy of the same version); a reload only loads where it is missing, so one
   * master restarted empty costs one FUNCTION LOAD on that master alone.
   */
  private load(reload: boolean): Promise<void> {
    if (this.loading !== undefined) return this.loading.promise;
    const index = ++this.loadsStarted;
    const promise = this.loadEverywhere(reload).then(
      () => {
        this.loaded = true;
        this.loadsCompleted++;
        this.loading = undefined;
      },
      (err: unknown) => {
        this.loading = undefined;
        throw err instanceof StoreError ? err : new StoreError(`loading the Redis Function library ${this.library.name} failed: ${errorMessage(err)}`, { cause: err });
      },
    );
    this.loading = { promise, index };
    return promise;
  }

  private async loadEverywhere(reload: boolean): Promise<void> {
    const servers = this.client.cluster === undefined ? [this.client.connection] : await this.client.cluster.masters();
    if (servers.length === 0) throw new StoreError('Redis Cluster client knows no master yet; the call was not sent', { notSent: true });
    await Promise.all(servers.map((server) => this.loadOn(server, reload)));
  }

  private async loadOn(server: RedisConnection, reload: boolean): Promise<void> {
    if (this.mode === 'eval') return;
    const name = serverName(server);
    const refusal = this.loadRefusals.get(name);
    if (refusal !== undefined) {
      if (performance.now() < refusal.until) throw refusal.error;
      this.loadRefusals.delete(name);
    }
    try {
      if (reload && (await hasLibrary(server, this.library.name))) return;
      await server.call('FUNCTION', reload ? ['LOAD', this.library.source] : ['LOAD', 'REPLACE', this.library.source]);
      this.libraryLoads.set(name, (this.libraryLoads.get(name) ?? 0) + 1);
    } catch (err) {
      const message = errorMessage(err);
      // Redis < 7, or an ACL that denies FUNCTION (`-function`, a managed service): EVALSHA from now on.
      if (UNKNOWN_COMMAND.test(message) || message.startsWith(NOPERM)) this.mode = 'eval';
      else if (message.startsWith(READONLY)) {
        // A replica: it gets the library from its master, or never. Do not send it again per call.
        const error = new StoreError(`loading the Redis Function library ${this.library.name} on ${name} failed: ${message}`, { cause: err });
        this.loadRefusals.set(name, { until: performance.now() + LOAD_REFUSAL_MS, error });
        throw error;
      } else if (!LIBRARY_EXISTS.test(message)) throw err; // another process loaded it meanwhile: fine
    }
  }
}

/** Whether `server` has library `name` (FUNCTION LIST read in RESP2 or RESP3, as each client decodes it). */
async function hasLibrary(server: RedisConnection, name: string): Promise<boolean> {
  const list = await server.call('FUNCTION', ['LIST', 'LIBRARYNAME', name]);
  // LIBRARYNAME matches by pattern (a prefix here): look for the exact name.
  return Array.isArray(list) && list.some((library) => libraryName(library) === name);
}

/**
 * The `library_name` of one FUNCTION LIST entry: a flat `[key, value, …]` array (RESP2), an object
 * or Map (RESP3 in node-redis), or `[{ key, value }, …]` (RESP3 in GLIDE).
 */
function libraryName(entry: unknown): unknown {
  if (entry instanceof Map) return entry.get('library_name');
  if (Array.isArray(entry)) {
    if (entry[0] === 'library_name') return entry[1];
    for (const field of entry) {
      const pair = field as { key?: unknown; value?: unknown } | null;
      if (pair !== null && typeof pair === 'object' && pair.key === 'library_name') return pair.value;
    }
    return undefined;
  }
  return entry !== null && typeof entry === 'object' ? (entry as { library_name?: unknown }).library_name : undefined;
}

function toStoreError(script: Script, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return scriptFailure(script.operation, errorMessage(err), err);
}
