/**
 * How the key extractors read a request. Express `req`, Koa `ctx` and Fastify `request` carry what
 * they need themselves (`.ip`, the framework's client address honouring its proxy setting;
 * `.headers`; `.query`) and are read as they are. A framework whose request object has none of
 * these (Hono's Context) is read through a view its adapter supplies: the adapter marks every
 * request it handles with `REQUEST_VIEW` before any extractor runs. So keys never imports a
 * framework, and a framework's notion of the client address stays in its adapter.
 */

/** How the client address was derived, for the once-per-process proxy warnings. */
export type ProxyTrust = 'none' | 'bounded' | 'permissive';

/** What the extractors read from a request object that is not shaped like Express's `req`. */
export interface RequestView<Req = any> {
  /** The client address as the adapter sees it; undefined when none is known (the connection is gone). */
  address(req: Req): string | undefined;
  /** The first value of a request header (`name` in lower case); undefined when absent. */
  header(req: Req, name: string): string | undefined;
  /** The first value of a query parameter; undefined when absent. */
  query(req: Req, name: string): string | undefined;
  /** How `address` treats proxies. */
  proxyTrust(req: Req): ProxyTrust;
}

/** Where an adapter puts a request's view: a symbol shared by every copy of ratelock in a process. */
export const REQUEST_VIEW: unique symbol = Symbol.for('ratelock.request-view') as never;

type Viewed = { [REQUEST_VIEW]?: RequestView | undefined };

/** The view an adapter marked `req` with, if any. */
export function requestView(req: unknown): RequestView | undefined {
  return req !== null && typeof req === 'object' ? (req as Viewed)[REQUEST_VIEW] : undefined;
}

/** Marks `req` so the extractors read it through `view`, unless it is marked already (e.g. by an app-level proxy setting). */
export function markRequestView(req: object, view: RequestView): void {
  const viewed = req as Viewed;
  if (viewed[REQUEST_VIEW] === undefined) viewed[REQUEST_VIEW] = view;
}

/** Marks `req` with `view`, replacing any view it had. */
export function setRequestView(req: object, view: RequestView): void {
  (req as Viewed)[REQUEST_VIEW] = view;
}
