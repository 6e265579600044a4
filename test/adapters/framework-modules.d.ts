/** The aliased older majors installed for tests (`express4` = express 4, `koa2` = koa 2): typed as the current ones. */
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}

/** koa-mount 4 ships no types: what the route-table test uses of it. */
declare module 'koa-mount' {
  import type { Middleware } from 'koa';
  import type Koa from 'koa';
  export default function mount(prefix: string, app: Koa | Middleware): Middleware;
}
