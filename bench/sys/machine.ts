/** What the results were measured on, for the report's header. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';

export interface Machine {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
}

export function describeMachine(): Machine {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux: keep 'unknown'
  }
  return { cpus: availableParallelism(), cpuModel, kernel: release(), node: process.version };
}

/** `wrk -v` prints e.g. "wrk 4.1.0 [epoll] Copyright …" (and exits 1). */
export function wrkVersion(): string | undefined {
  const result = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (result.error) return undefined;
  return /wrk\s+(\S+)/.exec(`${result.stdout}${result.stderr}`)?.[1] ?? 'unknown version';
}

/** The measured ratelock sources: `git describe` of the checkout, marked when src/ or lua/ differ from it. */
export function sourceRevision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'unknown (not a git checkout)';
  const dirty = git('status', '--porcelain', '--', 'src', 'lua').stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? ' + uncommitted changes in src/ or lua/' : ''}`;
}
