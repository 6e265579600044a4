/**
 * Fastify's one writer of ratelock's own responses (limited, refused, replayed): through `reply`,
 * so the app's onSend and onResponse hooks see them like any other response. The body goes as
 * bytes, which Fastify sends unchanged (a string with a JSON media type would get a charset added).
 */
import type { FastifyReply } from 'fastify';
import type { HttpAnswer } from '../http/answers.js';

export function sendAnswer(reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  reply.code(answer.status);
  for (const name of Object.keys(answer.headers)) reply.header(name, answer.headers[name]);
  return reply.send(typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body);
}

/** Sets one header: a module-level function, so writing quota headers creates no closure per request. */
export function setHeader(reply: FastifyReply, name: string, value: string): void {
  reply.header(name, value);
}
