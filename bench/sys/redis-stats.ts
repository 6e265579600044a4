/**
 * What Redis spent, from INFO: CPU (used_cpu_user + used_cpu_sys, all its threads) and commands
 * (INFO commandstats). Commands run inside a script or a MULTI count there too, so "commands" is
 * every command Redis executed, and "script calls" (EVAL*, FCALL*) is the number of scripts called:
 * one per round trip for every limiter measured here.
 */
import type { Redis } from 'ioredis';

export interface RedisSnapshot {
  cpuUs: number;
  commands: number;
  scriptCalls: number;
}

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
// Our own probes, not the workload's.
const IGNORED_COMMANDS = new Set(['info', 'flushall', 'flushdb', 'ping']);

export async function redisSnapshot(admin: Redis): Promise<RedisSnapshot> {
  const cpu = await admin.info('cpu');
  const stats = await admin.info('commandstats');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? NaN);
  let commands = 0;
  let scriptCalls = 0;
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = match[1]!.toLowerCase();
    const calls = Number(match[2]);
    if (IGNORED_COMMANDS.has(name)) continue;
    commands += calls;
    if (SCRIPT_COMMANDS.has(name)) scriptCalls += calls;
  }
  return { cpuUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6, commands, scriptCalls };
}

/** Redis work per unit (request, decision) between two snapshots. */
export function redisPer(before: RedisSnapshot, after: RedisSnapshot, units: number): RedisSnapshot {
  return {
    cpuUs: (after.cpuUs - before.cpuUs) / units,
    commands: (after.commands - before.commands) / units,
    scriptCalls: (after.scriptCalls - before.scriptCalls) / units,
  };
}
