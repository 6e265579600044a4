/** The aliased older majors installed for tests (`express4` = express 4, `koa2` = koa 2): typed as the current ones. */
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
