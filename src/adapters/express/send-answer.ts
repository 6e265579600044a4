/** Express's one writer of ratelock's own responses (limited, refused, replayed): status, headers, body. */
import type { Response } from 'express';
import type { HttpAnswer } from '../http/answers.js';

export function sendAnswer(res: Response, answer: HttpAnswer): void {
  res.statusCode = answer.status;
  for (const name of Object.keys(answer.headers)) res.setHeader(name, answer.headers[name] as string | string[]);
  res.end(answer.body);
}

/** Sets one header: a module-level function, so writing quota headers creates no closure per request. */
export function setHeader(res: Response, name: string, value: string): void {
  res.setHeader(name, value);
}
