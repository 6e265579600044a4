/**
 * Valkey GLIDE (`@valkey/valkey-glide` 2): `GlideClient` and `GlideClusterClient`, recognised by
 * their shape (ratelock never imports GLIDE).
 *
 * - Commands go through `customCommand` with an explicit `decoder` (strings, or Buffers for
 *   `callBuffer`), whatever the client's `defaultDecoder`; numbers are sent as strings.
 * - GLIDE rewrites server errors (`ERR Function not found` arrives as "An error was signalled by
 *   the server: - ResponseError: Function not found", `WRONGTYPE …` as "WRONGTYPE: …"): they are
 *   turned back into Redis's text, so the store reads every client's errors the same way.
 * - GLIDE reconnects by itself and has no connection status: a closed client is `'end'`, any other
 *   `'ready'`. While Redis is unreachable GLIDE holds each request until its `requestTimeout`; the
 *   store's in-flight gate (client.ts) then fails calls fast once the allowed silence is over.
 * - Cluster: a script call is routed to the primary of its first key's slot (`primarySlotKey`);
 *   GLIDE follows MOVED and ASK, TRYAGAIN is retried here. GLIDE keeps its slot map to itself, so
 *   the adapter keeps one of its own (CLUSTER SLOTS, read when first needed and again when the
 *   store finds it stale: a decision met a key its master no longer serves, or a master refused a
 *   call), and reaches one master by `routeByAddress` (FUNCTION LOAD, cross-slot batch calls).
 */
import { StoreError } from '../../../core/errors.js';
import { type ClusterTopology, type RedisArgument, type RedisConnection, type StoreClient, errorMessage, firstKeyOf } from '../client.js';
import { retryingTryAgain, toWire } from './wire.js';

/**
 * GLIDE's command options as the adapter passes them (`decoder`, `route`). `route` is typed `never`
 * here so that both GLIDE classes fit this shape (their `Routes` type is GLIDE's own); the adapter
 * builds routes as GLIDE documents them.
 */
type GlideOptions = { decoder?: number; route?: never };

/** The shape of a GLIDE client that RedisStore reads (`GlideClient`, `GlideClusterClient`). */
export interface GlideClientLike {
  customCommand(args: (string | Buffer)[], options?: GlideOptions): Promise<unknown>;
  close(errorMessage?: string): void;
}

/** `GlideClusterClient`: the only one with `fcallWithRoute`. */
export interface GlideClusterClientLike extends GlideClientLike {
  fcallWithRoute(...args: never[]): Promise<unknown>;
}

export function isGlideClient(client: object): client is GlideClientLike {
  const candidate = client as Partial<GlideClientLike>;
  return typeof candidate.customCommand === 'function' && typeof candidate.close === 'function';
}

export function isGlideCluster(client: object): client is GlideClusterClientLike {
  return isGlideClient(client) && typeof (client as Partial<GlideClusterClientLike>).fcallWithRoute === 'function';
}

/** GLIDE's `Decoder` enum (BaseClient.d.ts): `Bytes = 0`, `String = 1`. */
const DECODER_BYTES = 0;
const DECODER_STRING = 1;

/** redis-rs error kinds as GLIDE names them → the error code Redis sent. */
const ERROR_CODES: Readonly<Record<string, string>> = {
  ResponseError: 'ERR',
  NoScriptError: 'NOSCRIPT',
  ReadOnly: 'READONLY',
  Moved: 'MOVED',
  Ask: 'ASK',
  TryAgain: 'TRYAGAIN',
  ClusterDown: 'CLUSTERDOWN',
  CrossSlot: 'CROSSSLOT',
  MasterDown: 'MASTERDOWN',
  BusyLoadingError: 'LOADING',
  ExecAbortError: 'EXECABORT',
  NotBusy: 'NOTBUSY',
  PermissionDenied: 'NOPERM',
};
const SIGNALLED = /^An error was signalled by the server: - (\w+): ([\s\S]*)$/;
/** An error code GLIDE passed through as `CODE: text` (WRONGTYPE, OOM, BUSY…). */
const CODED = /^([A-Z][A-Z_]+): ([\s\S]*)$/;

/** A GLIDE rejection with Redis's own error text as message (the GLIDE error as its cause). */
export function normaliseGlideError(err: unknown): Error {
  const message = errorMessage(err);
  const signalled = SIGNALLED.exec(message);
  if (signalled) return new Error(`${ERROR_CODES[signalled[1]!] ?? signalled[1]!.toUpperCase()} ${signalled[2]!}`, { cause: err });
  const coded = CODED.exec(message);
  if (coded) return new Error(`${coded[1]!} ${coded[2]!}`, { cause: err });
  return err instanceof Error ? err : new Error(message);
}

function rethrowNormalised(err: unknown): never {
  throw normaliseGlideError(err);
}

/** Whether GLIDE's client was closed (`close()`); its `isClosed` field is protected, not private. */
function statusOf(client: GlideClientLike): string {
  return (client as { isClosed?: unknown }).isClosed === true ? 'end' : 'ready';
}

/** A GLIDE client, or one node of a cluster client (`route`), as a connection. */
class GlideConnection implements RedisConnection {
  readonly #strings: GlideOptions;
  readonly #buffers: GlideOptions;

  constructor(
    private readonly client: GlideClientLike,
    readonly name: string | undefined,
    route?: object,
  ) {
    this.#strings = (route === undefined ? { decoder: DECODER_STRING } : { decoder: DECODER_STRING, route }) as GlideOptions;
    this.#buffers = (route === undefined ? { decoder: DECODER_BYTES } : { decoder: DECODER_BYTES, route }) as GlideOptions;
  }

  get status(): string {
    return statusOf(this.client);
  }

  call(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.client.customCommand(toWire(command, args), this.#strings).catch(rethrowNormalised);
  }

  callBuffer(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.client.customCommand(toWire(command, args), this.#buffers).catch(rethrowNormalised);
  }
}

export function glideClient(client: GlideClientLike): StoreClient {
  return { kind: 'glide', connection: new GlideConnection(client, undefined), cluster: undefined, keyPrefix: '', keepsCommandOrder: false };
}

/** A GLIDE cluster client: each call routed to the primary of its first key's slot. */
class GlideClusterConnection implements RedisConnection {
  constructor(private readonly client: GlideClusterClientLike) {}

  get status(): string {
    return statusOf(this.client);
  }

  call(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.#send(command, args, DECODER_STRING);
  }

  callBuffer(command: string, args: RedisArgument[]): Promise<unknown> {
    return this.#send(command, args, DECODER_BYTES);
  }

  #send(command: string, args: RedisArgument[], decoder: number): Promise<unknown> {
    const key = firstKeyOf(args);
    const route = key === undefined ? 'randomNode' : { type: 'primarySlotKey', key: typeof key === 'number' ? String(key) : key };
    const options = { decoder, route } as unknown as GlideOptions;
    const wire = toWire(command, args);
    return retryingTryAgain(() => this.client.customCommand(wire, options).catch(rethrowNormalised));
  }
}

const SLOTS = 16_384;
/** Least time between two reads of CLUSTER SLOTS. */
const MAP_REFRESH_INTERVAL_MS = 100;

/** The adapter's own slot map of a GLIDE cluster (GLIDE does not expose its own). */
class GlideSlotMap implements ClusterTopology {
  #slots: (string | undefined)[] = [];
  #connections = new Map<string, GlideConnection>();
  #loaded: Promise<void> | undefined;
  #refreshing: Promise<void> | undefined;
  #refreshedAt = -Infinity;

  constructor(private readonly client: GlideClusterClientLike) {}

  masterOf(slot: number): string | undefined {
    if (this.#loaded === undefined) this.staleMap(); // first use: read it, decide by slot meanwhile
    return this.#slots[slot];
  }

  masterConnections(): ReadonlyMap<string, RedisConnection> {
    return this.#connections;
  }

  async masters(): Promise<readonly RedisConnection[]> {
    this.#loaded ??= this.#refresh();
    await this.#loaded;
    if (this.#connections.size === 0) throw new StoreError('Redis Cluster (GLIDE) reported no master; the call was not sent', { notSent: true });
    return [...this.#connections.values()];
  }

  staleMap(): void {
    if (this.#refreshing !== undefined || performance.now() - this.#refreshedAt < MAP_REFRESH_INTERVAL_MS) return;
    const refresh = this.#refresh();
    this.#loaded ??= refresh;
    refresh.catch(() => undefined); // a failed read leaves the old map; the next stale decision asks again
  }

  #refresh(): Promise<void> {
    this.#refreshing ??= this.#read().finally(() => {
      this.#refreshing = undefined;
      this.#refreshedAt = performance.now();
    });
    return this.#refreshing;
  }

  async #read(): Promise<void> {
    const reply = await this.client.customCommand(['CLUSTER', 'SLOTS'], { route: 'randomNode', decoder: DECODER_STRING } as unknown as GlideOptions).catch(rethrowNormalised);
    if (!Array.isArray(reply)) throw new StoreError(`CLUSTER SLOTS answered ${typeof reply}`);
    const slots = new Array<string | undefined>(SLOTS);
    const connections = new Map<string, GlideConnection>();
    for (const range of reply as unknown[]) {
      if (!Array.isArray(range) || !Array.isArray(range[2])) continue;
      const [from, to, [host, port]] = range as [number, number, [string, number]];
      const name = `${host}:${port}`;
      if (!connections.has(name)) {
        connections.set(name, this.#connections.get(name) ?? new GlideConnection(this.client, name, { type: 'routeByAddress', host, port }));
      }
      for (let slot = from; slot <= to && slot < SLOTS; slot++) slots[slot] = name;
    }
    this.#slots = slots;
    this.#connections = connections;
  }
}

export function glideCluster(client: GlideClusterClientLike): StoreClient {
  return { kind: 'glide', connection: new GlideClusterConnection(client), cluster: new GlideSlotMap(client), keyPrefix: '', keepsCommandOrder: false };
}
