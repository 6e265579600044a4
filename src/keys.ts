/**
 * Key extractors and key specs (DESIGN.md "Keys"): `keys.ip()`, `keys.header()`, `keys.user()`,
 * `keys.query()`, `keys.all()`, and the helpers adapters use to turn a spec into a request's key.
 */
export { keys, isHeaderName, type KeyExtractor, type IpKeyOptions, type UserId } from './keys/extractors.js';
export { extractKey, resolveKey, compileKeySpec, validateKeySpec, type KeySpec, type KeyResolver, type KeySpecOptions } from './keys/extract.js';
export { ipKeyPart } from './keys/ip-address.js';
