/**
 * Typed script bindings: one per Lua function in lua/, each declaring the KEYS and ARGV it sends
 * and how its reply is read. The ARGV order written here and the named locals at the top of the
 * Lua function are the two halves of one contract; nothing else restates it. RedisStore methods
 * only pick a binding and pass a typed input; the script runner builds the command from it.
 *
 * Builders append to an array they are handed rather than returning their own, so a command's
 * arguments are built in one array without copies, and several inputs could be appended to one
 * call's arguments.
 */
import { randomBytes } from 'node:crypto';
import type {
  ConsumeResult,
  IdempotencyBeginResult,
  IdempotencyKeys,
  IdempotencyRun,
  LockAcquireResult,
  LockKeys,
  StoredResponse,
  StoreLimit,
} from '../../core/store.js';
import type { RedisArgument } from './client.js';
import { type BatchOutcome, parseBatch, parseConsume, parseFlag, parseIdempotencyBegin, parseInteger, parseLockAcquire } from './replies.js';
import { LIBRARY_NAME, composeLibrary, defineScript, lua, type Script, type ScriptFlag } from './scripts.js';

export type { BatchOutcome } from './replies.js';

/** The store time a script reads: ms of a test clock, or '' for Redis `TIME`. */
export type ClockArgument = number | '';

/** One Lua function, typed: `Input` in, `Result` out. */
export interface Binding<Input, Result> {
  readonly script: Script;
  /** Read the reply with bulk strings as Buffers (binary-safe bodies) rather than strings. */
  readonly binary: boolean;
  /**
   * Written to the socket at once (RedisConnection.flushWrites) rather than with the tick's other
   * commands: a batch call, already one call of many decisions.
   */
  readonly writtenAtOnce: boolean;
  /** Appends the call's KEYS to `into`. */
  readonly appendKeys: (into: RedisArgument[], input: Input) => void;
  /** Appends the call's ARGV to `into`, in the order the Lua function binds them to its named locals. */
  readonly appendArgv: (into: RedisArgument[], input: Input, clock: ClockArgument) => void;
  /** Checks the reply's shape and maps it; a malformed reply is a StoreError naming the operation. */
  readonly parse: (reply: unknown, input: Input) => Result;
}

interface BindingDefinition<Input, Result> {
  /** The Lua function, defined in the last of `files`. */
  readonly operation: string;
  /** lua/ files it needs, in library order. */
  readonly files: readonly string[];
  readonly binary?: boolean;
  readonly writtenAtOnce?: boolean;
  readonly flags?: readonly ScriptFlag[];
  readonly keys: Binding<Input, Result>['appendKeys'];
  readonly argv: Binding<Input, Result>['appendArgv'];
  readonly parse: (reply: unknown, operation: string, input: Input) => Result;
}

export function defineBinding<Input, Result>(definition: BindingDefinition<Input, Result>): Binding<Input, Result> {
  const { operation, keys, argv, parse } = definition;
  return {
    script: defineScript(operation, definition.files, definition.flags),
    binary: definition.binary ?? false,
    writtenAtOnce: definition.writtenAtOnce ?? false,
    appendKeys: keys,
    appendArgv: argv,
    parse: (reply, input) => parse(reply, operation, input),
  };
}

/** consume and peek: limits of one slot, checked all-or-nothing. */
export interface LimitsInput {
  readonly limits: readonly StoreLimit[];
  /** Units taken on a limit without its own `cost`. */
  readonly cost: number;
  /** On Cluster, the stamp the call's first slot group wrote (see grouped-consume.ts). */
  readonly align?: number | undefined;
}

export interface RefundInput {
  readonly limits: readonly StoreLimit[];
  readonly cost: number;
  /** The stamp consume returned. */
  readonly stamp: number;
}

export interface LockInput {
  readonly keys: LockKeys;
  readonly token: string;
}

export interface RecordInput {
  readonly keys: IdempotencyKeys;
  readonly token: string;
}

/**
 * One consume, peek or refund of a batch call: the decisions one process makes in one event-loop
 * turn, sent as one call (see decision-batcher.ts and lua/batch.lua).
 */
export interface BatchDecision {
  readonly kind: 'consume' | 'peek' | 'refund';
  readonly limits: readonly StoreLimit[];
  /** Units taken on a limit without its own `cost`. */
  readonly cost: number;
  /** consume: the align stamp (see LimitsInput), if any; refund: the stamp to remove; peek: unused. */
  readonly stamp: number | undefined;
}

/**
 * A cross-slot batch call (Cluster). `keyPrefix`: the client's ioredis `keyPrefix` ('' if none),
 * which ioredis adds to declared keys only: the keys of this call travel in ARGV, so the binding
 * adds it, and they name the same keys as every other call.
 */
export interface CrossSlotInput {
  readonly decisions: readonly BatchDecision[];
  readonly keyPrefix: string;
}

/**
 * What a decision does, as lua/batch.lua reads it: the low two bits of its code (the rest is its
 * limit group). A consume with an align stamp, and a refund, are followed by that stamp.
 */
const OPERATION_CODES = { consume: 0, peek: 1, refund: 2, alignedConsume: 3 } as const;

/**
 * The low three bits of a consume with the keys of the decision before it (same keys, then the
 * consume operation). Such consumes in a row, in that decision's limit group (a hot key's turn),
 * go as one run code: -count (lua/batch.lua).
 */
const RUN_CODE_LOW_BITS = 4 + OPERATION_CODES.consume;

/**
 * Arguments a decision adds to a batch call at most: its code and stamp, its keys, and a limit group
 * of its own (the limit count, then four fields per limit) when no decision before it in the call
 * has the same one.
 */
export function batchArgumentCount(decision: BatchDecision): number {
  return 3 + decision.limits.length * 5;
}

const slidingLogFiles = [lua.prelude, lua.slidingLog, lua.gcra, lua.penaltyBox, lua.consume];
const batchFiles = [...slidingLogFiles, lua.batch];
const lockFiles = [lua.prelude, lua.lock];
const recordFiles = [lua.prelude, lua.idempotency];

function limitKeys(into: RedisArgument[], { limits }: { readonly limits: readonly StoreLimit[] }): void {
  for (const limit of limits) into.push(limit.key);
}

/**
 * One limit's four fields, as check_limits and refund_limits in lua/consume.lua read them: window,
 * limit, cost (its own, else the call's: the script never falls back) and shape ('' a sliding
 * log, the burst of a GCRA limit, 'b<blockMs>' a penalty box).
 */
function pushLimit(into: RedisArgument[], limit: StoreLimit, cost: number): void {
  into.push(limit.windowMs, limit.limit, limit.cost ?? cost, shapeOf(limit));
}

function shapeOf(limit: StoreLimit): RedisArgument {
  switch (limit.algorithm) {
    case 'gcra':
      return limit.burst ?? limit.limit;
    case 'penalty-box':
      return `b${limit.blockMs}`;
    default:
      return '';
  }
}

function limitsArgv(into: RedisArgument[], { limits, cost, align }: LimitsInput, clock: ClockArgument): void {
  into.push(clock, cost, align ?? '');
  for (const limit of limits) pushLimit(into, limit, cost);
}

const parseLimits = (reply: unknown, operation: string, { limits }: LimitsInput): ConsumeResult =>
  parseConsume(reply, operation, limits.length);

/**
 * The keys of a batch call: each decision's, in order, except a decision with exactly the keys of
 * the one before it (a hot key: every decision of a turn), which sends none and says so in its
 * code (see batchRecords). `prefix`: prepended to each (a cross-slot call's keys travel in ARGV).
 */
function batchKeys(into: RedisArgument[], decisions: readonly BatchDecision[], prefix = ''): void {
  for (let i = 0; i < decisions.length; i++) {
    if (sameKeysAsPrevious(decisions, i)) continue;
    for (const limit of decisions[i]!.limits) into.push(prefix === '' ? limit.key : prefix + limit.key);
  }
}

/** Whether decision i has the keys of decision i - 1, in the same order. */
function sameKeysAsPrevious(decisions: readonly BatchDecision[], i: number): boolean {
  if (i === 0) return false;
  const limits = decisions[i]!.limits;
  const previous = decisions[i - 1]!.limits;
  if (limits === previous) return true;
  if (limits.length !== previous.length) return false;
  for (let j = 0; j < limits.length; j++) if (limits[j]!.key !== previous[j]!.key) return false;
  return true;
}

/**
 * Ids of calls whose effect a re-sent copy must not repeat or misreport, unique across processes
 * (a random prefix per process, then a counter). A client that loses its connection before a
 * reply came back re-sends the command (ioredis does), so Redis can run one call twice. Batch calls
 * that write leave their reply under their id for a few seconds (lua/batch.lua), so the copy
 * answers it instead of counting twice. A lock release, an idempotency abort or complete leaves
 * its id (lua/prelude.lua, mark_settled), so the copy answers "done" rather than "not held",
 * which the lease would take for a lost lease.
 */
const CALL_ID_PREFIX = randomBytes(9).toString('base64url');
let callCount = 0;

function nextCallId(): string {
  return CALL_ID_PREFIX + (callCount++).toString(36);
}

/** The call id (a fresh one when a decision writes, '' when all only peek), then the limit groups and the decisions (batchRecords). */
function batchArgv(into: RedisArgument[], decisions: readonly BatchDecision[]): void {
  let writes = false;
  for (const { kind } of decisions) if (kind !== 'peek') writes = true;
  into.push(writes ? nextCallId() : '');
  batchRecords(into, decisions);
}

/**
 * The decisions of a call, compactly: the decisions of one limiter have the same limits but for
 * their keys, so the four fields of each limit (pushLimit) go once per call in a limit group, and
 * a decision is one code (group × 4 + operation) and, for a refund or an aligned consume, its stamp.
 * A decision of one limit is thus 2 arguments (key, code) instead of 8: each costs Node ~0.2 µs to
 * write and Redis to read; one with the keys of the decision before it is 1 (see batchKeys), and
 * consumes in a row with the keys and group of the decision before them are one together (a run,
 * see RUN_CODE_LOW_BITS). Code: (group × 2 + same keys as the previous decision) × 4 + operation.
 * Layout: the number of groups, each group (limit count, then the fields), then the decisions in
 * order.
 */
function batchRecords(into: RedisArgument[], decisions: readonly BatchDecision[]): void {
  const groupCountAt = into.length;
  into.push(0);
  const groupStarts: number[] = [];
  const codes: number[] = [];
  for (const decision of decisions) {
    let group = 0;
    while (group < groupStarts.length && !sameGroup(into, groupStarts[group]!, decision)) group++;
    if (group === groupStarts.length) {
      groupStarts.push(into.length);
      into.push(decision.limits.length);
      for (const limit of decision.limits) pushLimit(into, limit, decision.cost);
    }
    codes.push((group * 2 + (sameKeysAsPrevious(decisions, codes.length) ? 1 : 0)) * 4 + operationCode(decision));
  }
  into[groupCountAt] = groupStarts.length;
  for (let i = 0; i < decisions.length; i++) {
    const code = codes[i]!;
    if (i > 0 && code % 8 === RUN_CODE_LOW_BITS && code >> 3 === codes[i - 1]! >> 3) {
      let run = 1;
      while (i + run < decisions.length && codes[i + run] === code) run++;
      into.push(-run);
      i += run - 1;
      continue;
    }
    into.push(code);
    const operation = code % 4;
    if (operation === OPERATION_CODES.refund || operation === OPERATION_CODES.alignedConsume) into.push(decisions[i]!.stamp!);
  }
}

function operationCode({ kind, stamp }: BatchDecision): number {
  if (kind === 'consume') return stamp === undefined ? OPERATION_CODES.consume : OPERATION_CODES.alignedConsume;
  return OPERATION_CODES[kind];
}

/** Whether the group written at `into[start]` holds exactly `decision`'s limit fields. */
function sameGroup(into: readonly RedisArgument[], start: number, { limits, cost }: BatchDecision): boolean {
  if (into[start] !== limits.length) return false;
  let at = start + 1;
  for (const limit of limits) {
    if (into[at] !== limit.windowMs || into[at + 1] !== limit.limit || into[at + 2] !== (limit.cost ?? cost) || into[at + 3] !== shapeOf(limit)) return false;
    at += 4;
  }
  return true;
}

/** How many keys batchKeys sends for `decisions`. */
function countKeys(decisions: readonly BatchDecision[]): number {
  let keys = 0;
  for (let i = 0; i < decisions.length; i++) if (!sameKeysAsPrevious(decisions, i)) keys += decisions[i]!.limits.length;
  return keys;
}

const lockKey = (into: RedisArgument[], { keys }: LockInput) => into.push(keys.lock);
const recordKey = (into: RedisArgument[], { keys }: RecordInput) => into.push(keys.record);

/** Every operation of the Store interface, one Lua function each. */
export const bindings = {
  consume: defineBinding<LimitsInput, ConsumeResult>({
    operation: 'consume',
    files: slidingLogFiles,
    keys: limitKeys,
    argv: limitsArgv,
    parse: parseLimits,
  }),
  peek: defineBinding<LimitsInput, ConsumeResult>({
    operation: 'peek',
    files: slidingLogFiles,
    keys: limitKeys,
    argv: limitsArgv,
    parse: parseLimits,
  }),
  /** Replies the number of entries removed. */
  refund: defineBinding<RefundInput, number>({
    operation: 'refund',
    files: slidingLogFiles,
    keys: limitKeys,
    argv: (into, { limits, cost, stamp }, clock) => {
      into.push(clock, cost, stamp);
      for (const limit of limits) pushLimit(into, limit, cost);
    },
    parse: parseInteger,
  }),
  /**
   * Several consume / peek / refund decisions in one call, run in order; one outcome per decision
   * (an error that failed only that decision is its outcome). On Cluster their keys share one slot.
   */
  batch: defineBinding<readonly BatchDecision[], BatchOutcome[]>({
    operation: 'batch',
    files: batchFiles,
    binary: true, // the reply is packed (see parseBatch)
    writtenAtOnce: true,
    keys: batchKeys,
    argv: (into, decisions, clock) => {
      into.push(clock);
      batchArgv(into, decisions);
    },
    parse: parseBatch,
  }),
  /**
   * Cluster: decisions of several slots that one master serves, sent to that master's own
   * connection. No KEYS (Redis refuses declared keys of several slots even to a flagged function):
   * the key count and the keys lead ARGV, then as `batch`.
   */
  batchCrossSlot: defineBinding<CrossSlotInput, BatchOutcome[]>({
    operation: 'batch_cross_slot',
    files: batchFiles,
    binary: true,
    writtenAtOnce: true,
    flags: ['allow-cross-slot-keys'],
    keys: () => undefined,
    argv: (into, { decisions, keyPrefix }, clock) => {
      into.push(countKeys(decisions));
      batchKeys(into, decisions, keyPrefix);
      into.push(clock);
      batchArgv(into, decisions);
    },
    parse: (reply, operation, { decisions }) => parseBatch(reply, operation, decisions),
  }),
  /** Replies the number of keys that existed. */
  reset: defineBinding<readonly string[], number>({
    operation: 'reset',
    files: [lua.reset],
    keys: (into, keys) => {
      for (const key of keys) into.push(key);
    },
    argv: () => undefined,
    parse: parseInteger,
  }),
  lockAcquire: defineBinding<LockInput & { readonly ttlMs: number }, LockAcquireResult>({
    operation: 'lock_acquire',
    files: lockFiles,
    keys: (into, { keys }) => into.push(keys.lock, keys.fence),
    argv: (into, { token, ttlMs }, clock) => into.push(clock, token, ttlMs),
    parse: parseLockAcquire,
  }),
  lockExtend: defineBinding<LockInput & { readonly ttlMs: number }, boolean>({
    operation: 'lock_extend',
    files: lockFiles,
    keys: lockKey,
    argv: (into, { token, ttlMs }) => into.push(token, ttlMs),
    parse: parseFlag,
  }),
  lockRelease: defineBinding<LockInput, boolean>({
    operation: 'lock_release',
    files: lockFiles,
    keys: lockKey,
    argv: (into, { token }) => into.push(token, nextCallId()),
    parse: parseFlag,
  }),
  idempotencyBegin: defineBinding<RecordInput & { readonly fingerprint: string; readonly leaseMs: number }, IdempotencyBeginResult>({
    operation: 'idempotency_begin',
    files: recordFiles,
    binary: true, // a replayed body is binary
    keys: (into, { keys }) => into.push(keys.record, keys.fence),
    argv: (into, { token, fingerprint, leaseMs }, clock) => into.push(clock, token, fingerprint, leaseMs),
    parse: parseIdempotencyBegin,
  }),
  idempotencyExtend: defineBinding<RecordInput & { readonly leaseMs: number }, boolean>({
    operation: 'idempotency_extend',
    files: recordFiles,
    keys: recordKey,
    argv: (into, { token, leaseMs }) => into.push(token, leaseMs),
    parse: parseFlag,
  }),
  idempotencyComplete: defineBinding<RecordInput & { readonly response: StoredResponse; readonly ttlMs: number; readonly run?: IdempotencyRun | undefined }, boolean>({
    operation: 'idempotency_complete',
    files: recordFiles,
    keys: (into, { keys }) => into.push(keys.record, keys.fence),
    argv: (into, { token, response, ttlMs, run }) => {
      const hasBody = response.body !== null;
      into.push(token, response.status, JSON.stringify(response.headers), hasBody ? '1' : '0', response.body ?? '', ttlMs);
      // The fence as the fence key holds it (the Lua compares the strings): an integer in decimal.
      if (run === undefined) into.push('', '');
      else into.push(String(run.fence), run.fingerprint);
    },
    parse: parseFlag,
  }),
  idempotencyAbort: defineBinding<RecordInput, boolean>({
    operation: 'idempotency_abort',
    files: recordFiles,
    keys: recordKey,
    argv: (into, { token }) => into.push(token, nextCallId()),
    parse: parseFlag,
  }),
} as const;

/** The Function library: every binding's Lua function, registered under its versioned name. */
export const library = {
  name: LIBRARY_NAME,
  source: composeLibrary(Object.values(bindings).map((binding) => binding.script)),
} as const;
