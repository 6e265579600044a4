/** CPU time of a process from /proc/<pid>/stat: utime + stime of all its threads, in µs. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// /proc reports clock ticks; CLK_TCK is 100 on every mainstream Linux, asked anyway.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
}
