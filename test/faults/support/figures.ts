/**
 * How a fault test hands its measurements to the report: `recordFigures()` writes one JSON file per
 * case under `.tmp/faults/figures/`, BEFORE the test asserts its bounds (so a failing run still
 * shows what it measured). The tier's reporter (report.ts) reads them back and renders
 * docs/reliability.md. Figures are never typed in by hand.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FIGURES_DIR = join(ROOT, '.tmp', 'faults', 'figures');

/** A measured value: a number (with its unit in the name), a yes/no, or a short text. */
export type Figure = number | string | boolean;

export interface CaseFigures {
  /** RELIABILITY.md check id, e.g. `'A3'`. */
  readonly check: string;
  /** Short name of the case inside the check, e.g. `'DEBUG SLEEP 0.3 s every second'`. */
  readonly case: string;
  /** What the test did, with its parameters. */
  readonly done: string;
  /** The bound(s) the test asserts, in words and numbers. */
  readonly bound: string;
  /** Measured on this run: name → value. Names carry the unit (`'p99 ms'`). */
  readonly figures: Readonly<Record<string, Figure>>;
  /** Optional remark (a documented limitation, why a figure is what it is). */
  readonly note?: string;
}

export interface StoredFigures extends CaseFigures {
  /** The vitest test that recorded it (file-relative full name), filled in by `recordFigures`. */
  readonly test: string;
  readonly file: string;
  readonly recordedAt: string;
}

function fileNameFor(check: string, caseName: string): string {
  const slug = caseName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
  return `${check}--${slug}.json`;
}

/** Writes (or replaces) the figures of one case. `test` names the test for the report. */
export function recordFigures(entry: CaseFigures, test: { file: string; name: string }): void {
  mkdirSync(FIGURES_DIR, { recursive: true });
  const stored: StoredFigures = { ...entry, test: test.name, file: test.file, recordedAt: new Date().toISOString() };
  writeFileSync(join(FIGURES_DIR, fileNameFor(entry.check, entry.case)), `${JSON.stringify(stored, null, 2)}\n`);
}

/** Every case recorded since the last `clearFigures()`. */
export function readFigures(): StoredFigures[] {
  let names: string[];
  try {
    names = readdirSync(FIGURES_DIR);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(join(FIGURES_DIR, name), 'utf8')) as StoredFigures)
    .sort((a, b) => a.recordedAt.localeCompare(b.recordedAt)); // in the order the tests ran
}

export function clearFigures(): void {
  rmSync(FIGURES_DIR, { recursive: true, force: true });
}
