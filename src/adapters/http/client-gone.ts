/**
 * The client leaving before its response, as an AbortSignal, for a request that waits for a busy
 * key (withLock `wait`): the Node response closes unfinished, its connection gone. The wait then
 * ends instead of taking the key for a request nobody will read. One listener on the request's own
 * response, which lives as long as the request: nothing to detach.
 */
import type { ServerResponse } from 'node:http';

export function clientGoneSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  if (res.destroyed || res.socket?.destroyed === true) controller.abort();
  else res.once('close', () => res.writableFinished || controller.abort());
  return controller.signal;
}
