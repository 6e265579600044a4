-- Penalty box: per limiter (or route rule) and client, one STRING beside its limits (same hash
-- tag). While the client is boxed it holds 'b<until ms>'; otherwise '<strikes>@<ms>': the number
-- of refusals since the client's last allowed request, and when the last of them was made. They
-- are forgotten `memory_ms` after it. When a refusal makes `after` strikes, the client is boxed
-- for `for_ms`: every decision that includes the box is then refused without reading or writing
-- its limits. Times live in the value, so a store clock injected by tests reads them right; the
-- key's TTL only frees the memory. (Needs prelude.lua.)

local BOXED_BYTE = 98 -- 'b'

-- The box at `now`: the ms it stays closed (0 = open) and the strikes counted. An end more than
-- `for_ms` ahead comes from a clock that stepped back: it is clamped to now + for_ms.
local function read_box(key, now, for_ms, memory_ms)
  local value = redis.call('GET', key)
  if not value then return 0, 0 end
  if string.byte(value, 1) == BOXED_BYTE then
    local closed_ms = (tonumber(string.sub(value, 2)) or 0) - now
    if closed_ms <= 0 then return 0, 0 end
    return math.min(closed_ms, for_ms), 0
  end
  local sep = string.find(value, '@', 1, true)
  if not sep then return 0, 0 end
  local last = tonumber(string.sub(value, sep + 1)) or 0
  if now - last >= memory_ms or last > now + memory_ms then return 0, 0 end
  return 0, tonumber(string.sub(value, 1, sep - 1)) or 0
end

-- Counts one refusal; boxes the client when it makes `after`. Returns the ms it is now boxed for (0 = not).
local function strike_box(key, strikes, now, after, for_ms, memory_ms, clock)
  if strikes + 1 >= after then
    redis.call('SET', key, 'b' .. int_str(now + for_ms), 'PX', key_ttl_ms(for_ms, clock))
    return for_ms
  end
  redis.call('SET', key, int_str(strikes + 1) .. '@' .. int_str(now), 'PX', key_ttl_ms(memory_ms, clock))
  return 0
end
