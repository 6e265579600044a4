/** Koa's one writer of ratelock's own responses (limited, refused, replayed): status, headers, body on `ctx`. */
import type { Context } from 'koa';
import type { HttpAnswer } from '../http/answers.js';

export function setAnswer(ctx: Context, answer: HttpAnswer): void {
  ctx.status = answer.status;
  // Headers straight on the Node response (what `ctx.set` ends in), and before the body: Koa's body
  // setter keeps a Content-Type already set instead of guessing one (a MIME lookup per response).
  const { res } = ctx;
  for (const name of Object.keys(answer.headers)) res.setHeader(name, answer.headers[name] as string | string[]);
  ctx.body = answer.body;
}

/**
 * Sets one quota header: a module-level function, so writing headers creates no closure per
 * request. Straight on the Node response (what `ctx.set` ends in), skipping Koa's delegation.
 */
export function setHeader(ctx: Context, name: string, value: string): void {
  ctx.res.setHeader(name, value);
}
