-- Sliding log: per limit a LIST of integer ms timestamps, newest at the head, one element per unit
-- of cost. The list stays sorted newest-first because every stamp is >= the head of every log it
-- is pushed to. An entry at t counts while now - t < window.

-- TTL of a log, set when a push starts a new window epoch (floor(stamp / window)) or creates the
-- log: until the end of the epoch after the stamp's, so at most 2 x window away. Every entry then
-- outlives its window: by induction, a log whose newest entry h is in epoch k expires no earlier
-- than (k + 2) x window > h + window, and every entry is <= h. Trims and refunds only remove
-- entries (the newest stays, or becomes older), so they never refresh it; a busy log costs one
-- PEXPIRE per window instead of one per trim.
local function log_ttl_ms(stamp, window_ms, now, clock)
  return key_ttl_ms((math.floor(stamp / window_ms) + 2) * window_ms - now, clock)
end

-- TTL of a one-entry log (a STRING, see single_entry): until its entry leaves the window. Its SET
-- sets a TTL anyway, so it needs no epoch (see log_ttl_ms), and a client back after a window finds
-- no key (one LRANGE of nothing) rather than an expired entry to read and delete (LRANGE, GET,
-- UNLINK). Many keys each seen about once in 1.5 windows: 3.1 -> 2.1 commands per decision.
local function single_ttl_ms(stamp, window_ms, now, clock)
  return key_ttl_ms(stamp + window_ms - now, clock)
end

-- Entries read from the tail by a log's first command: the oldest ones, among which the window's
-- boundary lies under steady traffic (EXPIRED_KEPT + 1 expired entries at most, and room for one
-- more). A log this short is read whole by that one command; a longer one costs LLEN and LINDEX
-- (its length and newest entry) on top. A value read costs Redis about 1.2-1.7 k instructions
-- (formatted, then parsed back into a Lua string), a one-value command about 3.5 k. With
-- EXPIRED_KEPT, chosen by `npm run bench:script` (callgrind; calls of 24 decisions over random
-- keys): TAIL_READ 4 with EXPIRED_KEPT 1 against 6 with 3, instructions per decision over logs of
-- ~7 entries 57.9 k vs 61.0 k, ~15: 59.4 k vs 62.6 k, ~60: 59.0 k vs 61.5 k, a hot key 9.2 k vs
-- 9.5 k. Fewer (3 with 1) or more (5 with 1 or 2) read cost more: more LINDEX galloping past a
-- short first read, or more values read.
local TAIL_READ = 4
-- Its LRANGE range and LINDEX's 0 as strings: redis.call formats a number argument with
-- sprintf (~0.3 µs each, a third of a short command).
local TAIL_FROM, TAIL_TO, HEAD = '-' .. TAIL_READ, '-1', '0'

-- Expired entries a log may keep at its tail: a call that finds at most this many counts them out
-- and leaves them (an LTRIM costs about as much as reading 3 values), the first that finds more
-- trims them all. A log that loses about one entry per visit then trims every other visit
-- instead of on every one.
local EXPIRED_KEPT = 1

-- LPUSH takes its values through unpack(), whose C stack holds ~8000 values: push in batches.
local PUSH_BATCH = 4096
local push_batch = {}

-- Pushes `count` copies of `entry` to the LIST `key`.
local function push_entries(key, entry, count)
  if count == 1 then
    redis.call('LPUSH', key, entry) -- the common case: no table, no unpack()
    return
  end
  for j = 1, math.min(count, PUSH_BATCH) do push_batch[j] = entry end
  local left = count
  while left > 0 do
    local n = math.min(left, PUSH_BATCH)
    redis.call('LPUSH', key, unpack(push_batch, 1, n))
    left = left - n
  end
end

-- Deferred pushes of one entry to a LIST: the decisions of one call on a hot key push the same
-- stamp one after another (each reading what the one before wrote, see known_keys in
-- consume.lua), so they go as one LPUSH of them all instead of one command each. Whatever reads a
-- log (read_log, LINDEX, a refund) or writes it otherwise calls flush_pushes first, and every call
-- ends with it. Pending: pending_n keys, each with its entry and how many copies.
local pending_keys, pending_entries, pending_counts = {}, {}, {}
local pending_n = 0

-- Starts a call with none pending: a call that failed half-way may have left some behind.
local function discard_pushes()
  pending_n = 0
end

-- None is pending once it starts: a push that fails (its decision fails) is not made twice.
local function flush_pushes()
  local n = pending_n
  pending_n = 0
  for p = 1, n do push_entries(pending_keys[p], pending_entries[p], pending_counts[p]) end
end

-- Adds `copies` of `entry` to the pushes pending for `key`; false (nothing added) when another
-- stamp is pending for it. Runs no command. The last pending push is looked at first: a hot
-- key's decisions push the same stamp one after another.
local function add_pending(key, entry, copies)
  if pending_n > 0 and pending_keys[pending_n] == key and pending_entries[pending_n] == entry then
    pending_counts[pending_n] = pending_counts[pending_n] + copies
    return true
  end
  for p = 1, pending_n do
    if pending_keys[p] == key then
      if pending_entries[p] ~= entry then return false end
      pending_counts[p] = pending_counts[p] + copies
      return true
    end
  end
  pending_n = pending_n + 1
  pending_keys[pending_n], pending_entries[pending_n], pending_counts[pending_n] = key, entry, copies
  return true
end

local function defer_push(key, entry)
  if add_pending(key, entry, 1) then return end
  flush_pushes() -- another stamp for this key: the ones before go first
  add_pending(key, entry, 1)
end

-- How many entries at the tail are expired (<= cutoff), and the oldest entry still in the window,
-- the `scanned` oldest being known to be expired. Requires the head in the window, so the boundary
-- lies strictly inside the list. Past the first read it gallops with LINDEX (8, 16, 32 ... entries
-- further) to an entry in the window, then binary-searches the last stride: about 2 x log2 of the
-- expired entries in single reads, so no call scans a large log. A one-value command costs Redis
-- ~3.5 k instructions and each value of an LRANGE ~1.2-1.7 k more: a hot key whose call finds ~30
-- entries expired since the previous one read 16 + 64 of them in chunks past its first read
-- (~100 k), where ~7 LINDEX do.
local function count_expired(key, len, cutoff, scanned)
  -- Invariant: the `lo` oldest are expired, the entry `hi` places from the tail is not (`kept`:
  -- its value, once read).
  local lo, hi, kept = scanned, len - 1, nil
  local stride = 8
  while lo + stride < hi do
    local entry = redis.call('LINDEX', key, int_str(-(lo + stride + 1)))
    entry = num_cache[entry] or num_miss(entry)
    if entry > cutoff then
      hi, kept = lo + stride, entry
      break
    end
    lo, stride = lo + stride + 1, stride * 2
  end
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('LINDEX', key, int_str(-(mid + 1)))
    entry = num_cache[entry] or num_miss(entry)
    if entry > cutoff then hi, kept = mid, entry else lo = mid + 1 end
  end
  if not kept then -- the head, never probed
    kept = redis.call('LINDEX', key, int_str(-(lo + 1)))
    kept = num_cache[kept] or num_miss(kept)
  end
  return lo, kept
end

-- A log of ONE entry is a STRING holding it (an integer, which Redis stores in the key's object):
-- ~160 B per key on Redis 7.0, where a one-entry LIST costs ~280 B (a quicklist node around a
-- listpack). A large keyspace (many clients, few requests each) is mostly such keys. The second
-- entry turns it into a LIST, which it stays. Nothing else ratelock writes is a STRING holding an
-- integer under a log's name (a GCRA limit's name ends in '-gcra'; a lock holds a token).
local WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value'

-- The one entry of a log kept as a STRING (see above), or a WRONGTYPE error for any other value.
local function single_entry(key)
  local entry = tonumber(redis.call('GET', key)) -- GET itself fails on a hash
  if not entry then error({ err = WRONGTYPE }) end
  return entry
end

-- Whether a failed command's error is WRONGTYPE (the key holds another type); any other error is raised again.
local function wrong_type(reply)
  if string.find(reply.err, 'WRONGTYPE', 1, true) then return true end
  error(reply)
end

-- Entries become numbers through num_cache (prelude.lua), else by `+ 0`: one strtod, where
-- tonumber() is a C call that converts twice. A value that is not a number raises an error.

-- Reads one log at `now`. Returns the number of entries in the window, the newest entry and the
-- oldest one in the window (both nil when the log is empty), whether the log is a one-entry
-- STRING, and how many expired entries its tail still holds. Expired entries are trimmed once
-- there are more than EXPIRED_KEPT of them. `length_from_push`: the caller pushes to the log next
-- and learns its length from LPUSH's reply (see consume_one_log), so a log longer than TAIL_READ
-- whose window boundary lies in the first read is not asked for it (no LLEN: 68 k -> 60 k
-- instructions per decision over logs of ~15 entries): the count returned is then nil.
local function read_log(key, window_ms, now, length_from_push)
  flush_pushes()
  local tail = redis.pcall('LRANGE', key, TAIL_FROM, TAIL_TO) -- oldest last
  local cutoff = now - window_ms
  if tail.err and wrong_type(tail) then
    local entry = single_entry(key)
    if entry > cutoff and entry <= now + window_ms then return 1, entry, entry, true, 0 end
    redis.call('UNLINK', key) -- expired, or from another clock epoch (see below)
    return 0, nil, nil, false, 0
  end
  local got = #tail
  if got == 0 then return 0, nil, nil, false, 0 end
  local len, head
  if got < TAIL_READ then
    len, head = got, tail[1]
  elseif length_from_push then
    head = redis.call('LINDEX', key, HEAD)
  else
    len = redis.call('LLEN', key)
    if len == got then head = tail[1] else head = redis.call('LINDEX', key, HEAD) end
  end
  head = num_cache[head] or num_miss(head)
  if head <= cutoff or head > now + window_ms then
    -- Everything expired, or the log comes from another clock epoch (the clock stepped back by
    -- more than a window): nobody may stay blocked by it. UNLINK frees big logs off the main thread.
    redis.call('UNLINK', key)
    return 0, nil, nil, false, 0
  end
  local oldest = tail[got]
  oldest = num_cache[oldest] or num_miss(oldest)
  if oldest > cutoff then return len, head, oldest, false, 0 end -- nothing expired
  -- The boundary: within the entries read (always, for a log read whole: its head is in the
  -- window), else further in.
  local expired, oldest_kept = got, nil
  for j = got - 1, 1, -1 do
    local entry = tail[j]
    entry = num_cache[entry] or num_miss(entry)
    if entry > cutoff then
      expired, oldest_kept = got - j, entry
      break
    end
  end
  if oldest_kept and expired <= EXPIRED_KEPT then return len and len - expired, head, oldest_kept, false, expired end
  if not oldest_kept then
    len = len or redis.call('LLEN', key)
    expired, oldest_kept = count_expired(key, len, cutoff, got)
  end
  redis.call('LTRIM', key, HEAD, int_str(-(expired + 1))) -- keeps all but the `expired` oldest
  return len and len - expired, head, oldest_kept, false, 0
end

-- Writes `cost` entries of `stamp` (a number; `entry`: it formatted) to the log `key`, which
-- holds `count` entries in the window, the newest being `head` (read by read_log; `single`: as a
-- STRING, that entry being `oldest`). `now`: the store time of the call (for the TTL).
local function write_log(key, count, single, oldest, head, stamp, entry, cost, window_ms, now, clock)
  if count > 0 and cost == 1 and not single then
    defer_push(key, entry) -- hot path
  else
    flush_pushes()
    if count == 0 and cost == 1 then
      redis.call('SET', key, entry, 'PX', single_ttl_ms(stamp, window_ms, now, clock)) -- a one-entry log
      return
    end
    if single then
      -- A second entry: the STRING becomes a LIST of its entry, then the new ones.
      redis.call('DEL', key)
      if cost == 1 then
        redis.call('LPUSH', key, int_str(oldest), entry)
      else
        redis.call('LPUSH', key, int_str(oldest))
        push_entries(key, entry, cost)
      end
    else
      push_entries(key, entry, cost)
    end
  end
  -- A new LIST (or one made from a STRING by DEL) has no TTL yet; a push into a later window epoch
  -- than the newest entry's moves it on (see log_ttl_ms).
  -- (x - x % w is x's epoch times w: no math.floor calls, ~2 % of a decision's instructions.)
  if count == 0 or single or stamp - stamp % window_ms ~= head - head % window_ms then
    redis.call('PEXPIRE', key, log_ttl_ms(stamp, window_ms, now, clock))
  end
end
