/**
 * Fastify plugins without encapsulation, as `fastify-plugin` makes them but without depending on
 * it: the marks Fastify itself reads (`skip-override`: hooks and decorators land on the instance
 * that registers the plugin, so the limiter applies to that instance's routes and to those of its
 * children; a display name for Fastify's messages; the Fastify major for its version check).
 */

/** Marks `plugin` as registered without encapsulation, named `name` in Fastify's messages. */
export function withoutEncapsulation<Plugin extends object>(plugin: Plugin, name: string): Plugin {
  Object.defineProperties(plugin, {
    [Symbol.for('skip-override')]: { value: true },
    [Symbol.for('fastify.display-name')]: { value: name },
    [Symbol.for('plugin-meta')]: { value: Object.freeze({ name, fastify: '5.x' }) },
  });
  return plugin;
}

/** The hooks a ratelock limiter may run in: those called `(request, reply)`, from the earliest (no body yet) to the last before the handler. */
export const LIMITER_HOOKS = ['onRequest', 'preValidation', 'preHandler'] as const;
export type FastifyLimiterHook = (typeof LIMITER_HOOKS)[number];
