-- ratelock prelude: helpers shared by every operation (clock, integer formatting, fences).
-- Every file in lua/ only defines local functions; ratelock joins them into one Redis Function
-- library and into per-operation EVAL scripts.

-- Formats an integer-valued Lua number without exponent: tostring(1.7e15) would give '1.7e+15'.
-- '%d' (a C long) where '%.0f' and redis.call's own formatting of a number argument ('%.17g')
-- take the C library's floating-point path: ~1 k instructions instead of ~3 k. Command arguments
-- that are numbers therefore go through it.
local function int_str(n)
  return string.format('%d', n)
end

-- Store time in ms. `clock` is a store time tests inject (a number of ms) so that they run on a
-- virtual clock, or '' to read TIME. TIME before writes is safe: Redis 7 replicates effects, not
-- scripts.
local function now_ms(clock)
  if clock ~= '' then return tonumber(clock) end
  local t = redis.call('TIME')
  return (t[1] + 0) * 1000 + math.floor((t[2] + 0) / 1000)
end

-- Numbers of strings converted before, for values that recur: a batch call's decision codes, and
-- log entries (stamps are ms, shared by the decisions of one call and by every log written in
-- that ms). A hit is one table lookup (~100 instructions) where `s + 0` runs strtod (~550);
-- reading `num_cache[s] or num_miss(s)` converts a string seen before without a call. Bounded:
-- past NUM_CACHE_MAX strings (~80 B each in Lua's heap) it starts again empty. `s + 0` raises an
-- error for a value that is not a number, as the conversion it replaces did.
local NUM_CACHE_MAX = 2048
local num_cache, num_cached = {}, 0
local function num_miss(s)
  local n = s + 0
  if num_cached == NUM_CACHE_MAX then num_cache, num_cached = {}, 0 end
  num_cache[s], num_cached = n, num_cached + 1
  return n
end

-- Under a clock injected by tests, Redis expiry still runs on real time: keys whose times live in
-- their values are kept alive for at least an hour there.
local TEST_CLOCK_MIN_KEY_TTL_MS = 3600 * 1000

-- TTL (ms, integer >= 1) of a key that may go once `ms` have passed on the store clock, formatted
-- as the command argument it is (see int_str).
local function key_ttl_ms(ms, clock)
  ms = math.max(math.ceil(ms), 1)
  if tonumber(clock) then return int_str(math.max(ms, TEST_CLOCK_MIN_KEY_TTL_MS)) end
  return int_str(ms)
end

-- Store time in µs (same override, scaled). µs since 1970 (~1.7e15) stays exact in a double (< 2^53).
local function now_us(clock)
  local override = tonumber(clock)
  if override then return override * 1000 end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- The fence key outlives its lock by far (10 leases, at least a day after its last fence), yet
-- must not live forever: every lock or idempotency key leaves one (~90 B), and an API that takes a
-- new Idempotency-Key per request keeps a day of them. Once it has expired, the TIME floor alone
-- keeps the next fence above the last one unless the Redis clock was set back by more than a day.
local FENCE_MIN_TTL_MS = 24 * 3600 * 1000

-- Issues the next fencing token of `fence_key`: max(previous + 1, store time in µs). The TIME floor
-- keeps fences increasing even after the counter is lost (DEL, restart without persistence).
-- Mostly the floor is ahead of the counter (a fence per µs at most), so one SET ... GET writes it
-- and reads the previous one, where GET + SET took two commands; a counter at or past the floor
-- (a test clock, the clock stepped back) is then set again, to previous + 1.
local function next_fence(fence_key, clock, lease_ms)
  local floor = now_us(clock)
  local ttl = int_str(math.max(lease_ms * 10, FENCE_MIN_TTL_MS))
  local previous = tonumber(redis.call('SET', fence_key, int_str(floor), 'PX', ttl, 'GET')) or 0
  if previous < floor then return floor end
  redis.call('SET', fence_key, int_str(previous + 1), 'PX', ttl)
  return previous + 1
end

-- A key named `suffix` in the slot of `key` (so Cluster accepts it where a call on `key` runs):
-- `{<key's hash tag>}` then `suffix`, or the whole key as the tag when it has none. nil when no
-- such name exists (a key with a '}' but no tag; ratelock's keys always carry a tag). Outside the
-- key's own prefix, so a scan of a prefix's keys never meets these bookkeeping keys.
local function in_slot_of(key, suffix)
  local open = string.find(key, '{', 1, true)
  if open then
    local close = string.find(key, '}', open + 1, true)
    if close and close > open + 1 then return '{' .. string.sub(key, open + 1, close - 1) .. '}' .. suffix end
  end
  if string.find(key, '}', 1, true) then return nil end
  return '{' .. key .. '}' .. suffix
end

-- Calls that delete what their token holds (a lock's release, an idempotency record's abort)
-- leave a mark `{<tag>}#settled:<call id>` for SETTLED_MARK_TTL_MS: the same call re-sent by its
-- client after a reconnect (ioredis re-sends commands left unanswered) finds the key gone, and the
-- mark tells it that it was this very call, so it answers 1 again instead of "not held". A
-- deliberate second call has another id and still answers 0. 10 s outlasts a reconnect, as the
-- batch calls' records do (batch.lua); a mark is one short string.
local SETTLED_MARK_TTL_MS = '10000' -- a string: see int_str

local function mark_settled(key, call_id)
  local mark = call_id ~= '' and in_slot_of(key, '#settled:' .. call_id)
  if mark then redis.call('SET', mark, '1', 'PX', SETTLED_MARK_TTL_MS) end
end

local function settled_before(key, call_id)
  local mark = call_id ~= '' and in_slot_of(key, '#settled:' .. call_id)
  return mark and redis.call('EXISTS', mark) == 1
end
