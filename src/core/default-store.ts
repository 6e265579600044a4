/**
 * The store a guard uses when its `store` option is omitted. Core must not import a concrete store,
 * so the public entry points (`ratelock`, `ratelock/express`, `ratelock/koa`) provide it when they
 * load: the process-wide MemoryStore.
 */
import { ConfigError } from './errors.js';
import type { Store } from './store.js';

let provider: (() => Store) | undefined;

/** Called by the entry points with the factory of the process-wide default store. */
export function provideDefaultStore(factory: () => Store): void {
  provider = factory;
}

/** The default store; a ConfigError if no entry point provided one (core used on its own). */
export function defaultStore(): Store {
  if (provider === undefined) throw new ConfigError('no store given and no default store provided: pass a store option (e.g. new MemoryStore())');
  return provider();
}
