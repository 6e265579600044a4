/**
 * Fastify's writers of ratelock's own responses. Limited and refused ones go through `reply`, so
 * the app's onSend and onResponse hooks see them like any other response; the body goes as bytes,
 * which Fastify sends unchanged (a string with a JSON media type would get a charset added). A
 * replay does not: its stored response was captured as the onSend hooks left it, so running them
 * again would apply them twice (an envelope around the envelope; a hook that expects the handler's
 * string given bytes).
 */
import type { OutgoingHttpHeaders } from 'node:http';
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

/**
 * Sends a replayed response as stored, past the onSend hooks (see above): the reply is hijacked
 * and the Node response written directly. Headers set on `reply` earlier in the request (CORS by
 * an onRequest hook, say) go out with it, the stored ones over them; onResponse hooks still run.
 */
export function sendReplay(reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
  const headers: OutgoingHttpHeaders = { ...(reply.getHeaders() as OutgoingHttpHeaders) };
  if (body.length > 0) headers['content-length'] = body.length;
  for (const name of Object.keys(answer.headers)) headers[name.toLowerCase()] = answer.headers[name] as string | string[];
  reply.hijack();
  reply.raw.writeHead(answer.status, headers);
  reply.raw.end(body);
  return reply;
}
