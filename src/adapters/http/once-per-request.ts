/**
 * One limiter counts one request once. The same middleware mounted twice on a path
 * (`app.use('/x', limiter)` and `app.get('/x', limiter, handler)`) would otherwise take the
 * request's cost twice, silently halving its quota. The second pass lets the request through
 * untouched and warns once per limiter, so the double mount can be fixed.
 */

export class OncePerRequest {
  /** Marks the requests this limiter has counted: a property of the request object itself, no map to clean up. */
  readonly #mark = Symbol('ratelock.counted');
  readonly #logger: Logger;
  #warned = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** `true` the first time this limiter sees `request` (Express `req`, Koa `ctx`), `false` after. */
  claim(request: object): boolean {
    const marked = request as Record<symbol, true | undefined>;
    if (marked[this.#mark] === undefined) {
      marked[this.#mark] = true;
      return true;
    }
    if (!this.#warned) {
      this.#warned = true;
      this.#logger.warn('[ratelock] one rate limiter ran twice on the same request (mounted twice?); it counted the request once');
    }
    return false;
  }
}
import type { Logger } from '../../core/index.js';
