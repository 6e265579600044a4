/**
 * The Lua sources of lua/ composed two ways:
 * - one Redis Function library (`FUNCTION LOAD`, `FCALL`): named, versioned, persisted and
 *   replicated with the data;
 * - per-operation EVAL scripts (prelude + the operation's files + `return <operation>(KEYS, ARGV)`)
 *   for servers without Functions (Redis < 7), sent as EVALSHA with an EVAL fallback on NOSCRIPT.
 * SHA1s are computed here at load, never maintained by hand. Which operations exist, and what
 * they take and answer, is declared in bindings.ts.
 */
import { createHash } from 'node:crypto';
import prelude from '../../../lua/prelude.lua';
import slidingLog from '../../../lua/sliding-log.lua';
import gcra from '../../../lua/gcra.lua';
import penaltyBox from '../../../lua/penalty-box.lua';
import consume from '../../../lua/consume.lua';
import batch from '../../../lua/batch.lua';
import lock from '../../../lua/lock.lua';
import idempotency from '../../../lua/idempotency.lua';
import reset from '../../../lua/reset.lua';

/** The files of lua/, by name. */
export const lua = { prelude, slidingLog, gcra, penaltyBox, consume, batch, lock, idempotency, reset } as const;

/** Files in library order: a file may only use locals of the files before it. */
const LIBRARY_FILES = [prelude, slidingLog, gcra, penaltyBox, consume, batch, lock, idempotency, reset] as const;

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
  /** The Lua function in lua/ that implements it, e.g. `lock_acquire`; also names it in error messages. */
  readonly operation: string;
  /** Redis Function name, e.g. `ratelock_v1_0123456789_lock_acquire`. */
  readonly functionName: string;
  /** Standalone EVAL source of this operation. */
  readonly evalSource: string;
  /** SHA1 of `evalSource` (what SCRIPT LOAD answers). */
  readonly sha1: string;
  /**
   * `evalSource` declaring the Function's flags in a `#!lua` line (Redis >= 7), so it is refused
   * or allowed exactly as the Function is (OOM, cross-slot keys): what a function-mode call is
   * resent as when the library vanished again after its reload (see ScriptRunner.recover).
   */
  readonly flaggedEvalSource: string;
  /** Function flags: none, or `allow-cross-slot-keys` (see composeLibrary). */
  readonly flags: readonly ScriptFlag[];
}

/** The one flag a ratelock function may carry. */
export type ScriptFlag = 'allow-cross-slot-keys';

/** The script of the Lua function `operation`, defined in the last of `files` (which come in library order). */
export function defineScript(operation: string, files: readonly string[], flags: readonly ScriptFlag[] = []): Script {
  const evalSource = `${files.join('\n')}\nreturn ${operation}(KEYS, ARGV)\n`;
  return {
    operation,
    functionName: `${LIBRARY_NAME}_${operation}`,
    evalSource,
    sha1: createHash('sha1').update(evalSource).digest('hex'),
    flaggedEvalSource: `#!lua${flags.length > 0 ? ` flags=${flags.join(',')}` : ''}\n${evalSource}`,
    flags,
  };
}

/**
 * The Function library registering `scripts`. No flags by default, on purpose: an unflagged
 * function is refused under OOM before it writes anything (no `allow-oom`), and may write (no
 * `no-writes`); its keys share one slot (no `allow-cross-slot-keys`). The one exception,
 * `batch_cross_slot`, carries `allow-cross-slot-keys` (Redis >= 7.0): on Cluster it runs the
 * decisions of every slot one node serves (see lua/batch.lua); it is called as a Function, or
 * as its `flaggedEvalSource`, never as EVALSHA.
 */
export function composeLibrary(scripts: readonly Script[]): string {
  const flagList = (script: Script) => script.flags.map((flag) => `'${flag}'`).join(', ');
  return [
    `#!lua name=${LIBRARY_NAME}`,
    ...LIBRARY_FILES,
    ...scripts.map((script) => `redis.register_function{function_name='${script.functionName}', callback=${script.operation}, flags={${flagList(script)}}}`),
    '',
  ].join('\n');
}
