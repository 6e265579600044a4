-- GCRA (generic cell rate algorithm): per limit one STRING, its theoretical arrival time (TAT,
-- store ms, fractional). A limit of `limit` per `window` emits one unit every T = window / limit
-- ms; `burst` units may pass at once. A request of cost c passes when
--   max(TAT, now) + c * T - now <= burst * T
-- and then moves TAT there. Memory: one short string per key, whatever the limit (the sliding log
-- keeps one entry per unit in the window). Exact in the same sense as the log: all-or-nothing,
-- decided in one script call. (Needs prelude.lua.)

-- Float slack when comparing sums of T (a fraction of a µs; T itself is >= 1 µs).
local GCRA_EPSILON = 1e-6

-- TAT of `key` at `now`, never before now. A TAT more than burst * T ahead of now comes from a
-- clock that stepped back: it is clamped, so nobody waits longer than one full burst.
local function read_tat(key, now, period, burst)
  local stored = tonumber(redis.call('GET', key))
  if not stored or stored < now then return now end
  return math.min(stored, now + burst * period)
end

-- Units left at `now` under `tat`: whole units of the burst not used.
local function gcra_remaining(tat, now, period, burst)
  local left = math.floor((burst * period - (tat - now)) / period + GCRA_EPSILON)
  if left < 0 then return 0 end
  return left
end

-- ms until one more unit is free under `tat` (0 when the whole burst is free).
local function gcra_next_ms(tat, now, period, burst)
  local used = tat - now
  if used <= GCRA_EPSILON then return 0 end
  local credit = burst * period - used
  local whole = math.floor(credit / period + GCRA_EPSILON)
  local wait = (whole + 1) * period - credit
  return math.min(math.ceil(wait - GCRA_EPSILON), math.ceil(used))
end

-- ms until a request of `cost` fits under `tat`; -1 when it never can (cost > burst).
local function gcra_wait_ms(tat, now, period, burst, cost)
  if cost > burst then return -1 end
  return math.max(math.ceil(tat + cost * period - now - burst * period - GCRA_EPSILON), 1)
end

-- Stores `tat`, expiring when it is reached (then the whole burst is free and the key is not needed).
local function write_tat(key, tat, now, clock)
  redis.call('SET', key, string.format('%.17g', tat), 'PX', key_ttl_ms(tat - now, clock))
end

-- Gives `cost` units back: TAT moves back by cost * T, never before now.
local function refund_tat(key, now, period, cost, clock)
  local stored = tonumber(redis.call('GET', key))
  if not stored then return 0 end
  local tat = stored - cost * period
  if tat <= now then
    redis.call('DEL', key)
  else
    write_tat(key, tat, now, clock)
  end
  return cost
end
