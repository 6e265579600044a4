/** koa-ratelimit ships no types; the bench only needs its middleware factory. */
declare module 'koa-ratelimit' {
  import type { Middleware, Context } from 'koa';
  export default function ratelimit(options: {
    driver: 'redis' | 'memory';
    db: unknown;
    duration: number;
    max: number;
    id: (ctx: Context) => string;
  }): Middleware;
}
