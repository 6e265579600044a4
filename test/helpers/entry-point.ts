/**
 * Loaded before every test file (vitest `setupFiles`): what importing any public entry point does
 * for a user — it provides the process-wide default store to core. Tests import internals
 * directly, which users cannot (the package's exports map only has the entry points).
 */
import '../../src/index.js';
