/**
 * Lets `node --import tsx` run TypeScript sources that import Lua scripts as text (src/stores/redis
 * does): `node --import tsx --import ./examples/support/register-lua-text.mjs examples/express-basic.ts`.
 * Built packages (dist/) inline the scripts and need none of this.
 */
import { register } from 'node:module';

register('./lua-text-hook.mjs', import.meta.url);
