/**
 * The checks of RELIABILITY.md (A1–H4), as the report lists them: the fault, the expected bound,
 * the peers' figure where RELIABILITY.md gives one, and which existing tests of test/ also answer
 * for the check — cited by file (its path's tail, so a move to another folder keeps working) and
 * by test name. Cited files marked `run` are run again by the tier, so the report shows whether
 * they passed on this run; the others run in `npm test` and are cited only.
 *
 * This file holds descriptions only: every figure in the report comes from a test of this run
 * (test/faults/*, through support/record.ts).
 */

export interface CitedTests {
  /** Tail of the file's path under test/, e.g. `'lua/lock.test.ts'`. */
  readonly file: string;
  /** Substrings of the tests' full names that answer for the check. */
  readonly tests: readonly string[];
  /** Run again by the tier (else: run by `npm test`, cited here). */
  readonly run?: boolean;
}

export interface Check {
  readonly id: string;
  /** The fault or bad input, as RELIABILITY.md puts it (shortened). */
  readonly fault: string;
  /** The expected behaviour, as RELIABILITY.md puts it (shortened). */
  readonly expected: string;
  /** The peers' figure RELIABILITY.md gives, if any. */
  readonly peers?: string;
  /** Existing tests that answer for the check too. */
  readonly cited?: readonly CitedTests[];
  /** Why the check does not apply, if so. */
  readonly notApplicable?: string;
  /** A remark on how the check is covered. */
  readonly remark?: string;
}

/** The tier's own test files (they record figures for the report). */
// `.fault.ts`, not `.test.ts`: the main config (`npm test`, test/**/*.test.ts) must not pick them up.
export const FAULT_FILES = ['test/faults/**/*.fault.ts'];

export const CHECKS: readonly Check[] = [
  {
    id: 'A1',
    fault: 'Redis SIGKILLed mid-traffic, down for seconds, open loop of 50 req/s',
    expected: 'every request answered within the bound; limiter 200 (open), lock and idempotent routes 503 + Retry-After, handler not run; logged once; no offline-queue growth',
    peers: 'first response after the kill 12.1–17.2 s (express-rate-limit, rate-limiter-flexible, koa-ratelimit at their defaults) [local]',
    cited: [
      { file: 'adapters/store-failure.test.ts', tests: ['a real Redis, stopped and back'] },
      { file: 'adapters/lock-faults.test.ts', tests: ['store down (replay:'], run: true },
      { file: 'stores/redis-loading.test.ts', tests: ['fails fast with a StoreError when the client is not ready', 'fails fast once a client that was ready is reconnecting'], run: true },
    ],
  },
  {
    id: 'A2',
    fault: 'Redis SIGSTOP 5 s (TCP open, no error event), then SIGCONT',
    expected: 'same bounds as A1; late or re-sent commands change nothing',
    cited: [
      { file: 'adapters/lock-faults.test.ts', tests: ['an acquire that timed out on a frozen Redis', 'an idempotency begin that timed out is aborted'], run: true },
      { file: 'core/rate-limiter-decide.test.ts', tests: ['gives back a consume that timed out but was recorded later'] },
    ],
  },
  {
    id: 'A3',
    fault: 'DEBUG SLEEP 0.3 every second; a script past busy-reply-threshold (BUSY); client pointed at a replica (READONLY)',
    expected: 'a store timeout or error → onStoreError; no request waits for the slow reply; recovery when the fault ends',
  },
  {
    id: 'A4',
    fault: 'SCRIPT FLUSH + FUNCTION FLUSH during traffic, autopipelining off and on',
    expected: 'exactly the limit allowed, 0 errors; NOSCRIPT / Function not found → one reload per process',
    cited: [
      { file: 'stores/redis-loading.test.ts', tests: ['reloads once per FUNCTION FLUSH', 'reloads every concurrent call after SCRIPT FLUSH', 'falls back to EVAL on NOSCRIPT'], run: true },
    ],
    remark:
      'Issue 12 item 1 reported 1 lost decision in 6 runs under repeated FUNCTION FLUSH with concurrent callers (a call meeting a lost library while another caller reloads it). Fixed: such a call waits for a load that began after it was sent, and is resent; if the library vanished again before that resend ran (a CI run of this test once failed 1 such call on GLIDE), it is sent as EVAL of its own code, which cannot miss it; a1-a2-outages.fault.ts runs FUNCTION FLUSH every 5 ms under 20 callers on every client (ioredis, node-redis 6 and 5, GLIDE).',
  },
  {
    id: 'A5',
    fault: 'Redis restarted empty on the same port (no RDB/AOF)',
    expected: 'functions reloaded by themselves; counters, leases and records lost as documented; fences still increase; 0 × 5xx',
    cited: [
      { file: 'adapters/store-failure.test.ts', tests: ['a real Redis, stopped and back'] },
      { file: 'adapters/lock-faults.test.ts', tests: ['fences keep increasing across a Redis restart'], run: true },
      { file: 'lua/lock.test.ts', tests: ['increase across a server restarted empty'], run: true },
    ],
  },
  {
    id: 'A6',
    fault: '`maxmemory 1mb`, noeviction (OOM) during consume, acquire and complete',
    expected: 'the whole call refused before any write, then onStoreError; no half-written state; every key keeps a TTL',
    cited: [{ file: 'stores/redis-loading.test.ts', tests: ['is refused before writing anything when Redis is out of memory'], run: true }],
  },
  {
    id: 'A7',
    fault: '`CLIENT KILL TYPE normal` every 200 ms for 10 s under load',
    expected: 'no crash, no double count, limits exact; re-sent acquires recognise their own token',
    cited: [
      { file: 'contract/locks.test.ts', tests: ['treats an acquire re-sent by the holder as acquired'], run: true },
      { file: 'contract/idempotency.test.ts', tests: ['treats a begin re-sent by the holder as acquired'] },
    ],
  },
  {
    id: 'B1',
    fault: "hostile ids ('', '{', '}', '}{', '{}', 1 KB, UTF-8…) with multi-limit [1s, 1h]",
    expected: 'every call in one slot: 0 CROSSSLOT, exact counts; no id picks its slot',
    peers: "the naive `rl:{id}:w` layout splits a call for '' and '}{' [local]",
    cited: [
      { file: 'core/rate-limiter-stores.test.ts', tests: ['keeps hostile ids apart and every call in one slot'], run: true },
      { file: 'stores/redis-cluster.test.ts', tests: ['shared cluster'], run: true },
    ],
  },
  {
    id: 'B2',
    fault: "live resharding of the hot key's slot (MIGRATING/IMPORTING + MIGRATE)",
    expected: 'ASK, MOVED and TRYAGAIN absorbed within the budget; the limit stays exact, 0 × 5xx',
    cited: [{ file: 'stores/redis-resharding.test.ts', tests: ['keeps the limit exact with no failed decision while the slot moves', 'keeps every key exact with no failed decision while one slot moves key by key'], run: true }],
  },
  {
    id: 'B3',
    fault: '`CLUSTER FAILOVER` on a replica, then `kill -9` of a master (3 masters + 3 replicas)',
    expected: 'functions already on the promoted replica; limiter open and lock 503 during the election, no hang; fences still increase',
  },
  {
    id: 'B4',
    fault: 'one master restarted empty (its FUNCTION LIST empty, the others not)',
    expected: 'Function not found → reload on that node only; 0 errors reach users',
    cited: [{ file: 'stores/redis-cluster.test.ts', tests: ['reloads only that master, and no call fails', 'reloads the library on that master only, and no call fails once the client is back'], run: true }],
  },
  {
    id: 'C1',
    fault: 'app clocks ±10 min apart on one key; MemoryStore while the system clock steps ±1 h',
    expected: 'Redis: exact, `now` comes from TIME; MemoryStore: monotonic clock, steps change nothing',
    cited: [{ file: 'stores/memory.test.ts', tests: ['ignores steps of the system clock'], run: true }],
  },
  {
    id: 'C2',
    fault: 'Redis clock +1 h (redis-server under faketime)',
    expected: 'the limiter forgets at most one window (≤ limit extra); early-expired leases detectable: fences increase, an extend after expiry fails',
  },
  {
    id: 'C3',
    fault: 'Redis clock −1 h',
    expected: 'no client blocked longer than window + tolerance; Retry-After finite, ≥ 1 and ≤ window',
    cited: [
      { file: 'lua/sliding-log.test.ts', tests: ['clamps stamps to the newest entry', 'drops a log from another clock epoch'], run: true },
      { file: 'contract/sliding-log.test.ts', tests: ['clock steps'] },
    ],
  },
  {
    id: 'D1',
    fault: '4 processes (2 Express, 2 Koa) × 1000 concurrent requests on one key, limit 100',
    expected: 'exactly 100 allowed and 900 × 429 with Retry-After; no other status',
    cited: [{ file: 'concurrency/multi-process.test.ts', tests: ['admits exactly', 'never admits more than'], run: true }],
  },
  {
    id: 'D2',
    fault: "multi-limit [10/s, 50/min], 500 concurrent requests, refund:'failure' while half the handlers fail",
    expected: 'all-or-nothing; a refund removes only its own entry, never a newer one',
    cited: [
      { file: 'contract/sliding-log.test.ts', tests: ['records in all of them or in none', 'removes exactly the refunded request', 'removes at most `cost` entries of a stamp shared'] },
      { file: 'adapters/refund.test.ts', tests: ["'failure'"] },
    ],
  },
  {
    id: 'D3',
    fault: 'property test: MemoryStore vs Lua on random (time, key, cost, limits) sequences',
    expected: 'same decisions, remaining and retryAfterMs',
    cited: [
      { file: 'property/store-equivalence.test.ts', tests: ['gives identical results on random request/time sequences'] },
      { file: 'property/memory-model.test.ts', tests: ['gives identical results and never exceeds a limit in any window'] },
    ],
  },
  {
    id: 'E1',
    fault: 'many acquirers on few keys, half waiting',
    expected: 'at most one holder per key; fences strictly increase; waiters poll with jitter, ≤ 20 calls/s',
    cited: [
      { file: 'core/lock-guard.test.ts', tests: ['gives strictly increasing fences to 20 waiters', 'polls a busy key with at most 20 store calls per second'], run: true },
      { file: 'contract/locks.test.ts', tests: ['grants one holder among 100 concurrent acquires'], run: true },
      { file: 'adapters/with-lock-processes.test.ts', tests: ['3 processes × 10 concurrent requests on one key'], run: true },
    ],
  },
  {
    id: 'E2',
    fault: 'holder process SIGKILLed mid-handler',
    expected: 'the key frees itself after ttl; a contender gets it within ttl + 100 ms',
    cited: [{ file: 'adapters/with-lock-processes.test.ts', tests: ['a holder SIGKILLed mid-handler frees the key within ttl'], run: true }],
  },
  {
    id: 'E3',
    fault: "holder's event loop blocked for 3 × ttl; release/extend from the old holder; wrong token",
    expected: 'signal aborted, LeaseLostError, no crash; never re-acquires; the old holder cannot touch the new one',
    cited: [
      { file: 'core/lock-guard.test.ts', tests: ['a lease lost to a blocked event loop', 'never re-acquires'], run: true },
      { file: 'adapters/lease-lost-http.test.ts', tests: ['the stale request learns it'], run: true },
    ],
  },
  {
    id: 'E4',
    fault: 'handler never finishes',
    expected: 'auto-extension stops at maxHold; a contender acquires by maxHold + ttl',
    cited: [{ file: 'core/lock-guard.test.ts', tests: ['auto-extension keeps a slow holder’s lock up to maxHold'], run: true }],
  },
  {
    id: 'E5',
    fault: 'acquire times out on the client (SIGSTOP Redis), then the late SET NX lands',
    expected: '503; the orphan lease is given back (or blocks ≤ ttl)',
    cited: [{ file: 'adapters/lock-faults.test.ts', tests: ['an acquire that timed out on a frozen Redis'], run: true }],
  },
  {
    id: 'E6',
    fault: 'fence counter lost: DEL of the fence key, Redis restarted empty, failover',
    expected: 'the next fence still greater than every fence before',
    cited: [
      { file: 'contract/locks.test.ts', tests: ['issues strictly increasing fences, also after the fence counter is lost'], run: true },
      { file: 'lua/lock.test.ts', tests: ['fencing tokens'], run: true },
    ],
  },
  {
    id: 'E7',
    fault: 'client disconnects mid-handler; socket destroyed mid-response; handler throws',
    expected: 'the lock held until the handler ends, then released; no timer survives',
    cited: [
      { file: 'adapters/with-lock.test.ts', tests: ['client disconnect mid-handler', 'a handler that throws releases the lock'] },
      { file: 'adapters/handles.test.ts', tests: ['leaves no timer or handle behind'] },
    ],
  },
  {
    id: 'F1',
    fault: '10 concurrent duplicates, with wait 0 and wait > handler time',
    expected: 'one execution; 409 problem+json, or the replay with wait',
    cited: [{ file: 'adapters/replay.test.ts', tests: ['runs one of 10 concurrent duplicates'] }],
  },
  {
    id: 'F2',
    fault: 'replay fidelity: cookie, Cache-Control, hop-by-hop and custom headers',
    expected: 'same status, byte-identical body, allowlisted headers only, no Set-Cookie',
    cited: [{ file: 'adapters/replay.test.ts', tests: ['replays status, body (byte-identical) and allowlisted headers'] }],
  },
  {
    id: 'F3',
    fault: 'same key, different body/method/path/query; reordered JSON; mismatch in flight',
    expected: '422, also in flight; reordered JSON is the same request',
    cited: [
      { file: 'adapters/replay.test.ts', tests: ['answers 422'] },
      { file: 'adapters/replay-fingerprint.test.ts', tests: ['ignores JSON key order'] },
    ],
  },
  {
    id: 'F4',
    fault: "same key from users A and B; B pre-registers A's key",
    expected: 'separate records: B can neither read nor block A',
    cited: [{ file: 'adapters/replay.test.ts', tests: ['keeps clients apart'] }],
  },
  {
    id: 'F5',
    fault: 'key missing, empty, > 255 chars, control characters, sent twice; "uuid" vs uuid',
    expected: '400 (never 5xx); the sf-string and the bare form are one key',
    cited: [
      { file: 'adapters/replay.test.ts', tests: ['answers 400 to a missing, empty, too long or repeated key'] },
      { file: 'adapters/idempotency-key.test.ts', tests: [''] },
    ],
  },
  {
    id: 'F6',
    fault: "handler outcomes 2xx, 4xx, throw, 5xx; ratelock's own rejections",
    expected: '2xx/4xx stored; a throw aborts the record; 5xx per option; own rejections never stored',
    cited: [{ file: 'adapters/replay.test.ts', tests: ['aborts the record when the handler throws', 'does not store 5xx unless storeServerErrors'] }],
  },
  {
    id: 'F7',
    fault: 'holder SIGKILLed mid-handler, or its lease expires and a retry takes over',
    expected: 'retries 409 until the lease ends, then one runs again; a stale complete cannot overwrite',
    cited: [
      { file: 'core/idempotency-guard.test.ts', tests: ['a crashed holder’s record frees itself within ttl', 'a stale holder cannot complete over its successor’s record'], run: true },
      { file: 'adapters/lease-lost-http.test.ts', tests: ['replay true'], run: true },
    ],
  },
  {
    id: 'F8',
    fault: '20 MB response; streamed response; replay.ttl elapsed',
    expected: 'capture capped, over it "not replayable"; nothing buffered without bound; forgotten after ttl',
    cited: [
      { file: 'adapters/replay.test.ts', tests: ['stores a body over maxBodyBytes as not replayable', 'captures a streamed body'] },
      { file: 'core/idempotency-guard.test.ts', tests: ['forgets a completed record after replayTtl'], run: true },
    ],
  },
  {
    id: 'G1',
    fault: 'XFF rotation and spoofing under each trust-proxy setting; extractors yielding nothing',
    expected: 'no bypass: rightmost untrusted hop; one warning per permissive setting; IP fallback, never a shared bucket',
    cited: [
      { file: 'keys/proxy-settings.test.ts', tests: [''], run: true },
      { file: 'keys/extractors.test.ts', tests: ['falls back to the IP when nothing yields'], run: true },
    ],
  },
  {
    id: 'G2',
    fault: 'IPv6 rotation inside one /64 and /56; mapped and dotted-quad forms; ip:port',
    expected: 'one bucket at /56; mapped → IPv4; port stripped; subnet option 32–64',
    cited: [{ file: 'keys/ip-address.test.ts', tests: [''], run: true }],
  },
  {
    id: 'G3',
    fault: '15 KB x-api-key, NUL/CRLF/UTF-8 ids, 100 k-char user id, 17 KB header',
    expected: 'Redis key ≤ 128 bytes; no key text in response headers; no 5xx',
    cited: [
      { file: 'keys/extractors.test.ts', tests: ['never throws on hostile values'], run: true },
      { file: 'stores/redis-cluster.test.ts', tests: ['shared cluster'], run: true },
    ],
  },
  {
    id: 'G4',
    fault: 'bad numbers from callbacks: limit() NaN/−1/1e12/throws; cost −5/0/NaN/∞/> limit',
    expected: 'typed ConfigError or documented 500; a negative cost never refunds; cost > limit → 429 with finite Retry-After',
    cited: [
      { file: 'adapters/rate-limit.test.ts', tests: ['dynamic limit and cost'] },
      { file: 'stores/memory.test.ts', tests: ['rejects cost'], run: true },
    ],
  },
  {
    id: 'H1',
    fault: '1 M unique keys against MemoryStore',
    expected: 'bounded by maxKeys (LRU), expired keys swept, O(1) operations',
    cited: [{ file: 'stores/memory.test.ts', tests: ['MemoryStore bounded memory'], run: true }],
    remark: 'run with 300 000 distinct clients against maxKeys (the bound is what matters, not the count).',
  },
  {
    id: 'H2',
    fault: '1 M unique keys against Redis, real key layout',
    expected: 'every key has a TTL (no PTTL −1); memory ≈ the local baseline; ≤ 200 MB for 1 M keys',
    peers: '181 B/key with 1 entry for a reference sliding log [local]; rate-limit stores that shipped keys without TTL (fastify-rate-limit#152, spring-cloud-zuul-ratelimit#311)',
    cited: [{ file: 'stores/redis-measure.test.ts', tests: ['of one log filled to limit'] }],
  },
  {
    id: 'H3',
    fault: 'limit 100 k whose whole window expires at once',
    expected: 'Redis never blocked for long (bounded purge)',
    peers: 'a reference purge took 23.7 ms at 100 k entries [local]',
    cited: [{ file: 'lua/large-log.test.ts', tests: [''], run: true }],
  },
  {
    id: 'H4',
    fault: 'slowloris body at 1 B/s, or a slow reader of a large response, on a locked route',
    expected: 'lease taken after body parsing, or bounded by maxHold and server timeouts',
  },
];

/** Every file the tier runs: its own and the cited files marked `run`. */
export function tierFiles(): string[] {
  const cited = CHECKS.flatMap((check) => (check.cited ?? []).filter((entry) => entry.run).map((entry) => `test/**/${entry.file}`));
  return [...FAULT_FILES, ...new Set(cited)];
}
