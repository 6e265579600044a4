/** Lua scripts are imported as their source text (tsup `loader`, vitest plugin). */
declare module '*.lua' {
  const source: string;
  export default source;
}
