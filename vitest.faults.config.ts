/**
 * The fault tier (`npm run test:faults`): RELIABILITY.md's checks against real redis-server
 * processes, one file at a time (the tests measure latencies and windows; parallel files on a
 * 2-core machine would measure each other). The reporter renders docs/reliability.md from the
 * figures the tests record and from which tests passed.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';
import { tierFiles } from './test/faults/support/catalog.js';

export default defineConfig({
  plugins: base.plugins, // .lua imports as text, as in the main config
  test: {
    include: tierFiles(),
    // As in the main config: the shared servers the cited test files use, and their setup files.
    globalSetup: base.test?.globalSetup,
    setupFiles: base.test?.setupFiles,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default', './test/faults/support/report.ts'],
  },
});
