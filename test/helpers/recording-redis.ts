/**
 * A fake ioredis client for tests of the commands RedisStore sends (no Redis needed): it records
 * every command (and the very array it was handed) and answers batch calls (lua/batch.lua's
 * FCALL / EVALSHA) decision by decision, like the script would for empty logs. A Cluster variant
 * has a slot map and one recording connection per master.
 */
import type { RedisArgument, RedisConnection } from '../../src/stores/redis/client.js';
import type { IoredisLike as RedisClientLike } from '../../src/stores/redis/clients/index.js';
import { bindings } from '../../src/stores/redis/bindings.js';
import { keySlot } from '../../src/stores/redis/hash-tag.js';
import { encodeMsgpackArray } from './msgpack.js';

export interface Sent {
  /** Who was sent it: `'client'`, or a master's `host:port`. */
  readonly to: string;
  readonly command: string;
  /** The arguments as sent. */
  readonly args: RedisArgument[];
  /** The array the client was handed. */
  readonly array: RedisArgument[];
}

/** One decision as a batch call carries it. */
export interface SentDecision {
  readonly kind: 'c' | 'p' | 'r';
  readonly keys: string[];
  readonly stamp: RedisArgument;
  /** Per limit: [window, limit, cost, shape]. */
  readonly limits: RedisArgument[][];
}

/** The store time the fake answers with (consume stamps). */
export const FAKE_NOW = 1_700_000_000_000;

/** A batch call's decisions, read back from its arguments (`[name, numkeys, ...]`). */
export function decodeBatch(args: readonly RedisArgument[]): { clock: RedisArgument; callId: RedisArgument; decisions: SentDecision[] } {
  const crossSlot = args[0] === bindings.batchCrossSlot.script.functionName;
  let keys: RedisArgument[];
  let at: number;
  if (crossSlot) {
    const count = Number(args[2]);
    keys = args.slice(3, 3 + count);
    at = 3 + count;
  } else {
    const count = Number(args[1]);
    keys = args.slice(2, 2 + count);
    at = 2 + count;
  }
  const clock = args[at++]!;
  const callId = args[at++]!;
  // Limit groups: n, then window/limit/cost/shape per limit.
  const groups: RedisArgument[][][] = [];
  for (let count = Number(args[at++]); groups.length < count; ) {
    const n = Number(args[at++]);
    groups.push(Array.from({ length: n }, (_, i) => args.slice(at + 4 * i, at + 4 * i + 4)));
    at += 4 * n;
  }
  // Decisions: (group × 2 + same keys as the previous) × 4 + operation (consume, peek, refund,
  // aligned consume), then a stamp for the last two; -r: r consumes with the keys and limits of
  // the decision before.
  const decisions: SentDecision[] = [];
  let key = 0;
  while (at < args.length) {
    const code = Number(args[at++]);
    if (code < 0) {
      const before = decisions.at(-1)!;
      for (let r = 0; r < -code; r++) decisions.push({ kind: 'c', keys: before.keys, stamp: '', limits: before.limits });
      continue;
    }
    const operation = code % 4;
    const rest = (code - operation) / 4;
    const limits = groups[Math.floor(rest / 2)]!;
    const stamp = operation >= 2 ? args[at++]! : '';
    const kind = (['c', 'p', 'r', 'c'] as const)[operation]!;
    if (rest % 2 === 1) {
      decisions.push({ kind, keys: decisions.at(-1)!.keys, stamp, limits });
      continue;
    }
    decisions.push({ kind, keys: keys.slice(key, key + limits.length).map(String), stamp, limits });
    key += limits.length;
  }
  return { clock, callId, decisions };
}

/**
 * What the fake answers for one decision: by default an empty log's answer (consume and peek
 * allowed with `limit - cost` remaining, seven integers; refund 0); a string (an error message) fails it alone.
 * `to`: who was sent the call (`'client'`, or a master's `host:port`).
 */
export type DecisionAnswer = (decision: SentDecision, to: string) => readonly number[] | string | undefined;

function defaultAnswer(decision: SentDecision): number[] {
  if (decision.kind === 'r') return [0];
  const [window, limit, cost] = decision.limits[0]!.map(Number) as [number, number, number];
  // allowed, index, remaining, resetMs, retryAfterMs, stamp, nextQuotaMs (room now: 0)
  return [1, 0, limit - cost, window, 0, decision.kind === 'c' ? FAKE_NOW : 0, 0];
}

export interface RecordingOptions {
  /** Per decision; undefined = the default answer. */
  answer?: DecisionAnswer;
  /** The whole call's outcome instead (an Error rejects it). */
  call?: (command: string, args: RedisArgument[], to: string) => unknown;
}

/** What slot 0 of a batch call holds, whatever the mode. */
const BATCH_NAMES = new Set<RedisArgument>([
  bindings.batch.script.functionName,
  bindings.batch.script.sha1,
  bindings.batch.script.evalSource,
  bindings.batchCrossSlot.script.functionName,
]);

function answerer(to: string, sent: Sent[], options: RecordingOptions) {
  return async (command: string, args: RedisArgument[]): Promise<unknown> => {
    sent.push({ to, command, args: [...args], array: args });
    if (command === 'PING') return 'PONG';
    if (command === 'FUNCTION') return 'OK';
    const whole = options.call?.(command, args, to);
    if (whole instanceof Error) throw whole;
    if (whole !== undefined) return whole;
    if (!BATCH_NAMES.has(args[0]!)) return 1;
    const values = decodeBatch(args).decisions.flatMap((decision): (number | string)[] => {
      const answer = options.answer?.(decision, to) ?? defaultAnswer(decision);
      return typeof answer === 'string' ? [answer] : [...answer];
    });
    return encodeMsgpackArray([FAKE_NOW, ...values]); // the store time first, packed, as lua/batch.lua answers
  };
}

/** A ready standalone client that records every command. */
export function recordingClient(options: RecordingOptions = {}): RedisClientLike & { sent: Sent[] } {
  const sent: Sent[] = [];
  const answer = answerer('client', sent, options);
  return { status: 'ready', sent, call: answer, callBuffer: answer };
}

/** Script calls only (no PING, no FUNCTION LOAD). */
export function scriptCalls(sent: readonly Sent[]): Sent[] {
  return sent.filter((entry) => entry.command !== 'PING' && entry.command !== 'FUNCTION');
}

/**
 * A ready Cluster client: `masters` masters (`10.0.0.<n>:6379`), slots split evenly between them,
 * each with its own recording connection; the client itself records what is routed by key.
 */
export function recordingCluster(masters: number, options: RecordingOptions = {}): RedisClientLike & { sent: Sent[]; masterOf(key: string): string } {
  const sent: Sent[] = [];
  const names = Array.from({ length: masters }, (_, i) => `10.0.0.${i + 1}:6379`);
  const connections: RedisConnection[] = names.map((name) => {
    const answer = answerer(name, sent, options);
    const [host, port] = name.split(':');
    return { status: 'ready', call: answer, callBuffer: answer, options: { host, port: Number(port) } } as RedisConnection;
  });
  const perMaster = Math.ceil(16_384 / masters);
  const slots = Array.from({ length: 16_384 }, (_, slot) => [names[Math.floor(slot / perMaster)]!]);
  const answer = answerer('client', sent, options);
  return {
    status: 'ready',
    isCluster: true,
    sent,
    slots,
    call: answer,
    callBuffer: answer,
    nodes: () => connections,
    masterOf: (key) => slots[keySlot(key)]![0]!,
  };
}
