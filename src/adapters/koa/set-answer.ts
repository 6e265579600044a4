/** Koa's one writer of ratelock's own responses (limited, refused, replayed): status, headers, body on `ctx`. */
import type { Context } from 'koa';
import type { HttpAnswer } from '../http/answers.js';

export function setAnswer(ctx: Context, answer: HttpAnswer): void {
  ctx.status = answer.status;
  ctx.body = answer.body;
  // After the body: Koa's body setter would otherwise guess the Content-Type.
  ctx.set(answer.headers as Record<string, string | string[]>);
}

/**
 * Sets one quota header: a module-level function, so writing headers creates no closure per
 * request. Straight on the Node response (what `ctx.set` ends in), skipping Koa's delegation.
 */
export function setHeader(ctx: Context, name: string, value: string): void {
  ctx.res.setHeader(name, value);
}
