/**
 * Top self-time functions of a V8 .cpuprofile, e.g. of a bench server run with
 * `BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" BENCH_CASES=koa-ratelock-redis-allow-hot npm run bench:quick`:
 * `node --import tsx bench/tools/cpuprofile-top.ts /tmp/prof/CPU.….0.001.cpuprofile [count] [--by-file]`
 * (the `.0.` file is the main thread). Self time is summed per function (or per file), so one
 * function reached through many call paths counts once.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, countText, ...flags] = process.argv.slice(2);
if (!file) throw new Error('usage: cpuprofile-top.ts <file.cpuprofile> [count] [--by-file]');
const byFile = flags.includes('--by-file') || countText === '--by-file';
const count = Number(countText) || 30;
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const nodeById = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<string, number>();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  const frame = nodeById.get(id)?.callFrame;
  if (!frame) return;
  const where = frame.url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '') || '(native)';
  const key = byFile ? where : `${frame.functionName || '(anonymous)'}  ${where}:${frame.lineNumber + 1}`;
  selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
  totalUs += delta;
});

console.log(`total ${(totalUs / 1e6).toFixed(2)} s sampled`);
for (const [key, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, count)) {
  console.log(`${((100 * us) / totalUs).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
}
