/**
 * A redis-server whose wall clock the test can step: started under Debian's libfaketime
 * (package `faketime`) with a timestamp file holding the offset (`+0`, `+3600`, `-3600` seconds),
 * re-read on every time call (FAKETIME_NO_CACHE). Only the wall clock moves, as an NTP step would:
 * the monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC). Redis's `TIME` and its key
 * expiry both follow the wall clock.
 *
 * Debian's redis-server allocates with jemalloc, which recurses into libfaketime during its start
 * (wolfcw/libfaketime#130: the server hangs before it listens). glibc's libc_malloc_debug, preloaded
 * first, takes malloc/free back to glibc's allocator, and libfaketime then starts cleanly.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisServerHandle, type StartRedisServerOptions } from '../../helpers/redis-server.js';

const LIB_DIRS = ['/usr/lib', '/lib', '/usr/lib64', '/usr/local/lib'];

/** The first existing `<dir>/<multiarch>/<tail>` or `<dir>/<tail>`. */
function findLibrary(tails: readonly string[]): string | undefined {
  for (const dir of LIB_DIRS) {
    if (!existsSync(dir)) continue;
    const subdirs = readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory() && entry.name.includes('-linux-'));
    for (const base of [dir, ...subdirs.map((entry) => join(dir, entry.name))]) {
      for (const tail of tails) {
        const candidate = join(base, tail);
        if (existsSync(candidate)) return candidate;
      }
    }
  }
  return undefined;
}

/** Path of libfaketime.so.1 (env FAKETIME_LIB overrides), or undefined when faketime is not installed. */
export function libfaketimePath(): string | undefined {
  const configured = process.env.FAKETIME_LIB;
  if (configured) return existsSync(configured) ? configured : undefined;
  return findLibrary(['faketime/libfaketime.so.1']);
}

export const FAKETIME_MISSING =
  'libfaketime.so.1 not found: install Debian/Ubuntu package `faketime` (scripts/ensure-faketime.sh does it when run as root), or set FAKETIME_LIB';

export interface FaketimeRedis {
  readonly server: RedisServerHandle;
  /** Steps the server's wall clock to real time + `offsetSeconds` (it takes effect on its next time call). */
  setOffset(offsetSeconds: number): void;
  stop(): Promise<void>;
}

/** Starts a redis-server under libfaketime at offset +0. Throws FAKETIME_MISSING without it. */
export async function startFaketimeRedis(options: StartRedisServerOptions = {}): Promise<FaketimeRedis> {
  const libfaketime = libfaketimePath();
  if (!libfaketime) throw new Error(FAKETIME_MISSING);
  const mallocDebug = findLibrary(['libc_malloc_debug.so.0']);
  const dir = mkdtempSync(join(tmpdir(), 'ratelock-faketime-'));
  const file = join(dir, 'offset');
  writeFileSync(file, '+0\n');
  // The harness spawns redis-server with this process's environment: set it for that one spawn only.
  const variables: Record<string, string> = {
    LD_PRELOAD: [mallocDebug, libfaketime].filter(Boolean).join(' '),
    FAKETIME_TIMESTAMP_FILE: file,
    FAKETIME_NO_CACHE: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  Object.assign(process.env, variables);
  let server: RedisServerHandle;
  try {
    server = await startRedisServer(options);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  return {
    server,
    setOffset(offsetSeconds: number) {
      writeFileSync(file, `${offsetSeconds >= 0 ? '+' : ''}${Math.trunc(offsetSeconds)}\n`);
    },
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
