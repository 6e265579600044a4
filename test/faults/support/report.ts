/**
 * The tier's vitest reporter: at the end of `npm run test:faults` it renders docs/reliability.md —
 * one row per check of RELIABILITY.md (catalog.ts) with what was done, the bound asserted, the
 * figures the tests recorded on this run (figures.ts) and each test's outcome. Cited tests of
 * test/ that the tier ran are reported with their outcome too.
 *
 * Only a run of the whole tier writes docs/; a partial run (a file filter or `-t`) writes
 * .tmp/faults/reliability.partial.md instead, so a partial table never replaces the full one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import type { Reporter, TestCase, TestModule, Vitest } from 'vitest/node';
import { CHECKS, type Check, type CitedTests } from './catalog.js';
import { ROOT, clearFigures, readFigures, type StoredFigures } from './figures.js';

const FULL_REPORT = join(ROOT, 'docs', 'reliability.md');
const PARTIAL_REPORT = join(ROOT, '.tmp', 'faults', 'reliability.partial.md');
/** What `npm test` (scripts/test.sh) leaves behind: vitest's JSON report of the whole suite. */
const NPM_TEST_SUMMARY = join(ROOT, '.tmp', 'vitest-summary.json');

type Outcome = 'passed' | 'failed' | 'known failure' | 'skipped' | 'not run';

interface RanTest {
  readonly file: string;
  readonly fullName: string;
  readonly outcome: Outcome;
  readonly durationMs: number;
}

function outcomeOf(test: TestCase): Outcome {
  const state = test.result().state;
  if (state === 'skipped' || state === 'pending') return 'skipped';
  // `it.fails`: vitest reports "passed" when the body failed as expected.
  if (test.options.fails) return state === 'passed' ? 'known failure' : 'failed';
  return state;
}

function collect(modules: ReadonlyArray<TestModule>): RanTest[] {
  const tests: RanTest[] = [];
  for (const module of modules) {
    const file = relative(ROOT, module.moduleId);
    for (const test of module.children.allTests()) {
      tests.push({ file, fullName: test.fullName, outcome: outcomeOf(test), durationMs: test.diagnostic()?.duration ?? 0 });
    }
  }
  return tests;
}

/** Markdown table cell: no pipes, no raw newlines. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

function formatFigure(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? value.toLocaleString('en', { maximumFractionDigits: 1 }) : String(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

function figuresText(entry: StoredFigures): string {
  const pairs = Object.entries(entry.figures).map(([name, value]) => `${name}: **${formatFigure(value)}**`);
  return pairs.join('; ');
}

/** The outcome of the test that recorded `entry`. */
function recordedOutcome(entry: StoredFigures, tests: readonly RanTest[]): Outcome {
  const test = tests.find((t) => t.file === entry.file && (t.fullName === entry.test || t.fullName.endsWith(entry.test)));
  return test?.outcome ?? 'not run';
}

const BADGE: Record<Outcome, string> = {
  passed: 'pass',
  failed: '**FAIL**',
  'known failure': '**known failure** (`it.fails`)',
  skipped: 'skipped',
  'not run': 'not run',
};

interface NpmTestRun {
  readonly startedAt: string;
  readonly tests: readonly RanTest[];
}

/** The last `npm test` run's results (CI runs it just before the tier), if there is one. */
function lastNpmTest(): NpmTestRun | undefined {
  if (!existsSync(NPM_TEST_SUMMARY)) return undefined;
  try {
    const summary = JSON.parse(readFileSync(NPM_TEST_SUMMARY, 'utf8')) as {
      startTime: number;
      testResults: { name: string; assertionResults: { fullName: string; status: string }[] }[];
    };
    const tests = summary.testResults.flatMap((file) =>
      file.assertionResults.map((test) => ({
        file: relative(ROOT, file.name),
        fullName: test.fullName,
        outcome: (test.status === 'passed' ? 'passed' : test.status === 'failed' ? 'failed' : 'skipped') as Outcome,
        durationMs: 0,
      })),
    );
    return { startedAt: new Date(summary.startTime).toISOString().slice(0, 16).replace('T', ' '), tests };
  } catch {
    return undefined;
  }
}

function citedSummary(cited: CitedTests, tests: readonly RanTest[], npmTest: NpmTestRun | undefined): string {
  const label = `\`test/…/${cited.file}\``;
  const inTier = tests.filter((t) => t.file.endsWith(`/${cited.file}`));
  const inNpmTest = npmTest?.tests.filter((t) => t.file.endsWith(`/${cited.file}`)) ?? [];
  const [inFile, where] = inTier.length > 0 ? [inTier, 'on this run'] : [inNpmTest, `in \`npm test\` of ${npmTest?.startedAt} UTC`];
  if (inFile.length === 0) return `${label} (runs in \`npm test\`)`;
  const matching = inFile.filter((t) => cited.tests.some((name) => t.fullName.includes(name)));
  if (matching.length === 0) return `${label}: cited tests not found (renamed?)`;
  const count = (outcome: Outcome) => matching.filter((t) => t.outcome === outcome).length;
  const parts = [`${count('passed')}/${matching.length} passed`];
  if (count('failed') > 0) parts.push(`**${count('failed')} FAILED**`);
  if (count('skipped') > 0) parts.push(`${count('skipped')} skipped`);
  return `${label}: ${parts.join(', ')} ${where}`;
}

function row(check: Check, figures: readonly StoredFigures[], tests: readonly RanTest[], npmTest: NpmTestRun | undefined): string {
  const mine = figures.filter((entry) => entry.check === check.id);
  const done: string[] = [];
  const bound: string[] = [];
  const measured: string[] = [];
  const result: string[] = [];
  for (const entry of mine) {
    const outcome = recordedOutcome(entry, tests);
    done.push(`**${entry.case}**: ${entry.done}`);
    bound.push(`**${entry.case}**: ${entry.bound}`);
    measured.push(`**${entry.case}**: ${figuresText(entry) || '—'}${entry.note ? ` _(${entry.note})_` : ''}`);
    result.push(`${entry.case}: ${BADGE[outcome]}`);
  }
  const cited = (check.cited ?? []).map((entry) => citedSummary(entry, tests, npmTest));
  if (mine.length === 0) {
    done.push(cited.length > 0 ? 'asserted by the cited tests (no figures of their own)' : '—');
    bound.push(check.expected);
    measured.push(cited.length > 0 ? 'see the cited tests’ outcome' : check.notApplicable ?? 'no figure on this run');
  }
  if (cited.length > 0) result.push(`cited: ${cited.join('; ')}`);
  if (check.notApplicable) result.push(`not applicable: ${check.notApplicable}`);
  if (check.remark) result.push(`remark: ${check.remark}`);
  return `| ${check.id} | ${cell(check.fault)} | ${cell(done.join('\n'))} | ${cell(bound.join('\n'))} | ${cell(measured.join('\n'))} | ${cell(check.peers ?? '—')} | ${cell(result.join('\n'))} |`;
}

function version(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 5_000 }).trim().split('\n')[0]!;
  } catch {
    return 'not installed';
  }
}

/** The code measured: the commit, and whether src/ or lua/ differ from it. */
function revision(): string {
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 5_000 }).trim();
    const sha = git(['rev-parse', '--short', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--', 'src', 'lua']) !== '';
    return `commit ${sha}${dirty ? ' with uncommitted changes to src/ or lua/' : ' (src/ and lua/ as committed)'}`;
  } catch {
    return 'no git checkout';
  }
}

function render(tests: readonly RanTest[], figures: readonly StoredFigures[], durationMs: number, full: boolean): string {
  const npmTest = lastNpmTest();
  const tier = tests.filter((t) => t.file.startsWith('test/faults/'));
  const cited = tests.filter((t) => !t.file.startsWith('test/faults/'));
  const count = (list: readonly RanTest[], outcome: Outcome) => list.filter((t) => t.outcome === outcome).length;
  const known = tier.filter((t) => t.outcome === 'known failure');
  const failed = tests.filter((t) => t.outcome === 'failed');
  const lines = [
    '# Reliability: the fault tier, measured',
    '',
    '<!-- Written by `npm run test:faults` (test/faults/support/report.ts). Do not edit by hand: every figure comes from a test of the run. -->',
    '',
    `Generated by \`npm run test:faults\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${full ? '' : ' (**partial run**)'}, ${revision()}: ` +
      `Node ${process.version}, ${version('redis-server', ['--version']).replace(/^Redis server /, 'Redis ')}, ` +
      `${cpus().length} CPUs; the tier took ${(durationMs / 1000).toFixed(0)} s.`,
    '',
    `The checks are those of RELIABILITY.md (what the most trusted systems promise, and the tests that follow for ratelock). ` +
      `Fault-tier tests (\`test/faults/*.fault.ts\`) start their own \`redis-server\` processes (and a 3 + 3 cluster, and a server under libfaketime), ` +
      `stopped by PID; loads go to 127.0.0.1 only and stop by themselves. Each test asserts its bound; the figures below are what it measured on this run.`,
    '',
    `- Fault-tier tests: ${count(tier, 'passed')} passed, ${count(tier, 'failed')} failed, ${known.length} known failures (marked \`it.fails\`: the bound is violated today), ${count(tier, 'skipped')} skipped.`,
    `- Cited tests of test/ run again by the tier: ${count(cited, 'passed')} passed, ${count(cited, 'failed')} failed, ${count(cited, 'skipped')} skipped.`,
    '',
  ];
  if (known.length > 0) {
    lines.push('Known failures (each is a bound ratelock misses today; the test flips to a plain `it` once fixed):', '');
    for (const test of known) lines.push(`- \`${test.file}\` › ${test.fullName}`);
    lines.push('');
  }
  if (failed.length > 0) {
    lines.push('**Failed on this run:**', '');
    for (const test of failed) lines.push(`- \`${test.file}\` › ${test.fullName}`);
    lines.push('');
  }
  lines.push(
    '| # | Fault (RELIABILITY.md) | What was done | Bound asserted | Measured on this run | Peers (RELIABILITY.md) | Result |',
    '|---|---|---|---|---|---|---|',
    ...CHECKS.map((check) => row(check, figures, tests, npmTest)),
    '',
    'Cited files that the tier does not run again are reported from the last `npm test` run of this checkout (`.tmp/vitest-summary.json`), when there is one; their tests assert the bound named in the row.',
    '',
  );
  return lines.join('\n');
}

export default class ReliabilityReporter implements Reporter {
  private startedAt = 0;
  private full = true;

  onInit(vitest: Vitest): void {
    this.startedAt = performance.now();
    clearFigures();
    // A run restricted by name, or to some files, is partial.
    const filters = vitest.config.testNamePattern !== undefined || (vitest as unknown as { filenamePattern?: unknown[] }).filenamePattern?.length;
    this.full = !filters;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const tests = collect(testModules);
    const faultFiles = readdirSync(join(ROOT, 'test', 'faults')).filter((name) => name.endsWith('.fault.ts'));
    const ranEvery = faultFiles.every((name) => tests.some((t) => t.file === `test/faults/${name}`));
    const full = this.full && ranEvery;
    const target = full ? FULL_REPORT : PARTIAL_REPORT;
    mkdirSync(join(target, '..'), { recursive: true });
    writeFileSync(target, render(tests, readFigures(), performance.now() - this.startedAt, full));
    console.log(`\n[faults] ${relative(ROOT, target)} written (${full ? 'whole tier' : 'partial run'})`);
  }
}
