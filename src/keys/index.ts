/**
 * The keys façade: key extractors (`keys.ip()`, `keys.header()`, `keys.user()`, `keys.query()`,
 * `keys.all()`), the key specs of route tables, and what adapters use to turn a spec into a
 * request's key. Keys depend on core only; adapters import keys only from here.
 */
export { keys, isHeaderName, type KeyExtractor, type KeyValue, type IpKeyOptions, type UserId } from './extractors.js';
export { compileKeySpec, compileFirstKey, validateKeySpec, type KeySpec, type KeyResolver, type KeySpecOptions } from './extract.js';
export { RouteKeyCompiler, type RouteKeySpec, type RouteKeySpecItem, type KeySpecContext } from './key-spec.js';
export { REQUEST_VIEW, requestView, markRequestView, setRequestView, type RequestView, type ProxyTrust } from './request-view.js';
