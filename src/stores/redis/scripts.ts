/**
 * The Lua sources of lua/ composed two ways:
 * - one Redis Function library (`FUNCTION LOAD`, `FCALL`): named, versioned, persisted and
 *   replicated with the data;
 * - per-operation EVAL scripts (prelude + the operation's files + `return entry(KEYS, ARGV)`) for
 *   servers without Functions (Redis < 7), sent as EVALSHA with an EVAL fallback on NOSCRIPT.
 * SHA1s are computed here at load, never maintained by hand.
 */
import { createHash } from 'node:crypto';
import prelude from '../../../lua/prelude.lua';
import slidingLog from '../../../lua/sliding-log.lua';
import consume from '../../../lua/consume.lua';
import lock from '../../../lua/lock.lua';
import idempotency from '../../../lua/idempotency.lua';
import reset from '../../../lua/reset.lua';

/** Files in library order: a file may only use locals of the files before it. */
const LIBRARY_FILES = [prelude, slidingLog, consume, lock, idempotency, reset] as const;

/**
 * The library's name carries its version: the protocol generation plus a digest of the Lua itself,
 * so any change to lua/ is a new library without anyone remembering to bump a number, and app
 * servers of two releases (a rolling deploy) each call their own code instead of replacing each
 * other's. Bump PROTOCOL only to mark a deliberate break.
 */
const PROTOCOL = 1;
const SOURCE_DIGEST = createHash('sha1').update(LIBRARY_FILES.join('\n')).digest('hex').slice(0, 10);
export const LIBRARY_NAME = `ratelock_v${PROTOCOL}_${SOURCE_DIGEST}`;

/** One operation, callable either way. */
export interface Script {
  /** Operation name, used in error messages (e.g. `consume`). */
  readonly operation: string;
  /** The Lua function in lua/ that implements it. */
  readonly entry: string;
  /** Redis Function name, e.g. `ratelock_v1_0123456789_consume`. */
  readonly functionName: string;
  /** Standalone EVAL source of this operation. */
  readonly evalSource: string;
  /** SHA1 of `evalSource` (what SCRIPT LOAD answers). */
  readonly sha1: string;
}

function defineScript(operation: string, entry: string, files: readonly string[]): Script {
  const evalSource = `${files.join('\n')}\nreturn ${entry}(KEYS, ARGV)\n`;
  return {
    operation,
    entry,
    functionName: `${LIBRARY_NAME}_${operation}`,
    evalSource,
    sha1: createHash('sha1').update(evalSource).digest('hex'),
  };
}

const sliding = [prelude, slidingLog, consume];
const fenced = (file: string) => [prelude, file];

/** Every operation of the Store interface, one script each. */
export const scripts = {
  consume: defineScript('consume', 'consume', sliding),
  peek: defineScript('peek', 'peek', sliding),
  refund: defineScript('refund', 'refund', sliding),
  reset: defineScript('reset', 'reset', [reset]),
  lockAcquire: defineScript('lock_acquire', 'lock_acquire', fenced(lock)),
  lockExtend: defineScript('lock_extend', 'lock_extend', fenced(lock)),
  lockRelease: defineScript('lock_release', 'lock_release', fenced(lock)),
  idempotencyBegin: defineScript('idempotency_begin', 'idempotency_begin', fenced(idempotency)),
  idempotencyExtend: defineScript('idempotency_extend', 'idempotency_extend', fenced(idempotency)),
  idempotencyComplete: defineScript('idempotency_complete', 'idempotency_complete', fenced(idempotency)),
  idempotencyAbort: defineScript('idempotency_abort', 'idempotency_abort', fenced(idempotency)),
} as const satisfies Record<string, Script>;

/**
 * The Function library. No flags on purpose: an unflagged function is refused under OOM before it
 * writes anything (no `allow-oom`), and may write (no `no-writes`); its keys share one slot (no
 * `allow-cross-slot-keys`).
 */
export const librarySource = [
  `#!lua name=${LIBRARY_NAME}`,
  ...LIBRARY_FILES,
  ...Object.values(scripts).map(
    (script) => `redis.register_function{function_name='${script.functionName}', callback=${script.entry}, flags={}}`,
  ),
  '',
].join('\n');
