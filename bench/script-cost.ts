/**
 * `npm run bench:script`: what one decision costs Redis inside the batch Function, in CPU
 * instructions, counted by valgrind's callgrind on a throwaway redis-server. Unlike time on a
 * shared machine (the same serial calls vary by ±30 % between runs here), the count is the same
 * to within ~0.3 % from run to run, so a change to lua/ can be judged by it alone: run this before
 * and after. It counts Redis's user-space work (parsing, the Function, its commands, the reply),
 * not the kernel's networking.
 *
 * Each scenario sends serial batch calls built by the store's own binding, on a virtual clock (the
 * test clock argument) so that the logs' lengths depend on the scenario only, not on how slow
 * callgrind makes Redis: a warm-up of 3.5 windows uninstrumented, then calls counted mid-epoch.
 * Needs valgrind (`apt-get install -y valgrind`) and redis-server; ~2 minutes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { StoreLimit } from '../src/core/store.js';
import { bindings, library, type BatchDecision } from '../src/stores/redis/bindings.js';
import { startRedisServer } from '../test/helpers/redis.js';

const WINDOW_MS = 1_000;
const LIMIT = 1_000_000_000; // the allow path, as the other benches
const VIRTUAL_START_MS = 1_800_000_000_000; // a multiple of the window: the first call starts an epoch
const WARM_WINDOWS = 3.5; // logs at their steady length; the counted calls start mid-epoch
const COUNTED_DECISIONS = 14_400;

interface Scenario {
  name: string;
  /** Distinct keys, drawn at random (see keyIndex); 1 = one hot key. */
  keys: number;
  /** Decisions per call. */
  perCall: number;
  /** Calls per virtual ms: with `keys` and `perCall`, how long the logs grow. */
  callsPerMs: number;
}

const SCENARIOS: readonly Scenario[] = [
  { name: '10 000 keys, logs of ~7 entries', keys: 10_000, perCall: 24, callsPerMs: 3 },
  { name: '10 000 keys, logs of ~15 entries', keys: 10_000, perCall: 24, callsPerMs: 6 },
  { name: '2 500 keys, logs of ~60 entries', keys: 2_500, perCall: 24, callsPerMs: 6 },
  { name: 'one hot key, 24 decisions a call', keys: 1, perCall: 24, callsPerMs: 6 },
  { name: 'one decision a call, 100 keys (logs of ~15)', keys: 100, perCall: 1, callsPerMs: 1.5 },
];

function requireCommand(command: string, install: string): void {
  if (spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0) {
    console.error(`bench:script needs ${command}: ${install}`);
    process.exit(1);
  }
}

function callgrindControl(pid: number, ...args: string[]): void {
  const result = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} failed: ${result.stderr}`);
}

/**
 * The key of decision number `i`: drawn from `keys` by a fixed hash of `i`, so every run sends the
 * same calls. Random, not round-robin: keys taken in turn are all visited in step, so they all
 * reach their trim (see EXPIRED_KEPT in lua/sliding-log.lua) in the same sweep, and a count over
 * part of a sweep lands on or off it (same code, 10 000 keys: 68.6 k instructions per decision
 * over 0.7 of a sweep, 58.7 k over four). Real traffic visits keys unevenly too.
 */
function keyIndex(i: number, keys: number): number {
  let x = (i + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return ((x ^ (x >>> 16)) >>> 0) % keys;
}

/** The batch call of decision numbers [first, first + perCall) of `scenario`, as RedisStore sends it. */
function batchCall(scenario: Scenario, first: number, callIndex: number): string[] {
  const decisions: BatchDecision[] = [];
  for (let i = first; i < first + scenario.perCall; i++) {
    const limit: StoreLimit = { key: `rl:{k${keyIndex(i, scenario.keys)}}:bench`, windowMs: WINDOW_MS, limit: LIMIT };
    decisions.push({ kind: 'consume', limits: [limit], cost: 1, stamp: undefined });
  }
  const keys: string[] = [];
  const argv: string[] = [];
  bindings.batch.appendKeys(keys, decisions);
  bindings.batch.appendArgv(argv, decisions, VIRTUAL_START_MS + Math.floor(callIndex / scenario.callsPerMs));
  return [bindings.batch.script.functionName, String(keys.length), ...keys, ...argv.map(String)];
}

async function measure(client: Redis, pid: number, outDir: string, scenario: Scenario): Promise<{ instructions: number; commands: string }> {
  await client.flushall();
  const warmCalls = Math.round(WARM_WINDOWS * WINDOW_MS * scenario.callsPerMs);
  const countedCalls = Math.round(COUNTED_DECISIONS / scenario.perCall);
  const call = (index: number) => client.call('FCALL', ...batchCall(scenario, index * scenario.perCall, index));
  for (let index = 0; index < warmCalls; index++) await call(index);
  await client.config('RESETSTAT');
  callgrindControl(pid, '--instr=on');
  callgrindControl(pid, '--zero');
  for (let index = warmCalls; index < warmCalls + countedCalls; index++) await call(index);
  for (const file of readdirSync(outDir)) rmSync(join(outDir, file));
  callgrindControl(pid, '--dump');
  callgrindControl(pid, '--instr=off');
  const stats = await client.info('commandstats');
  const dumps = readdirSync(outDir);
  if (dumps.length === 0) throw new Error('callgrind wrote no dump');
  const dump = readFileSync(join(outDir, dumps[0]!), 'utf8');
  const total = Number(/^(?:summary|totals): (\d+)/m.exec(dump)?.[1]);
  const decisions = countedCalls * scenario.perCall;
  const commands = [...stats.matchAll(/^cmdstat_([a-z]+):calls=(\d+)/gm)]
    .filter(([, name]) => !['fcall', 'config', 'info'].includes(name!))
    .map(([, name, calls]) => `${name} ${(Number(calls) / decisions).toFixed(2)}`)
    .join(', ');
  return { instructions: total / decisions, commands };
}

requireCommand('valgrind', 'apt-get install -y valgrind');
requireCommand('redis-server', 'apt-get install -y redis-server');
const outDir = mkdtempSync(join(tmpdir(), 'ratelock-callgrind-'));
const server = await startRedisServer({ under: ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outDir}/callgrind.%p`] });
const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
try {
  await client.call('FUNCTION', 'LOAD', 'REPLACE', library.source);
  console.log('Instructions Redis runs per decision (callgrind), serial batch calls, allow path:\n');
  console.log('| scenario | instructions per decision | commands per decision |');
  console.log('|---|---:|---|');
  for (const scenario of SCENARIOS) {
    const { instructions, commands } = await measure(client, server.pid, outDir, scenario);
    console.log(`| ${scenario.name} | ${Math.round(instructions).toLocaleString('en-US')} | ${commands} |`);
  }
} finally {
  client.disconnect();
  await server.stop();
  rmSync(outDir, { recursive: true, force: true });
}
