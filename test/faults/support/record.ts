/**
 * `record()` for use inside a test: stores a case's figures under the name of the running test
 * (see figures.ts). Call it before asserting, so a failing run still reports what it measured.
 */
import { relative } from 'node:path';
import { expect } from 'vitest';
import { ROOT, recordFigures, type CaseFigures } from './figures.js';

export function record(entry: CaseFigures): void {
  const state = expect.getState();
  const file = state.testPath ? relative(ROOT, state.testPath) : 'unknown';
  recordFigures(entry, { file, name: state.currentTestName ?? entry.case });
}
