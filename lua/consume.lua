-- consume / peek / refund on sliding logs (needs prelude.lua and sliding-log.lua).

-- Per-limit state of check_limits, reused by every call: one check runs at a time, and entries
-- past the current call's n are never read.
local windows, limits, costs, counts, heads, oldests = {}, {}, {}, {}, {}, {}

-- int_str of the last stamp written (formatting costs about as much as a command): the decisions
-- of one batch call mostly share one stamp.
local last_stamp, last_stamp_str = nil, nil
local function stamp_str(stamp)
  if stamp ~= last_stamp then last_stamp, last_stamp_str = stamp, int_str(stamp) end
  return last_stamp_str
end

-- consume and peek: checks n limits and, when `record` is true (consume) and all have room,
-- writes the request to all of them; else writes nothing. Limit i (1 .. n) is the log
-- keys[key_at + i] with window_ms, limit and cost at argv[arg_at + 3i - 2], argv[arg_at + 3i - 1],
-- argv[arg_at + 3i] (cost '' = call_cost). `now` is the store time (ms) the check runs at;
-- `align` as in the ARGV of check_one (nil = none). Writes its reply to out[pos + 1 .. pos + 7],
-- only after its last command, and returns pos + 7:
-- { allowed 0|1, index (0-based deciding limit), remaining, resetMs, retryAfterMs, stamp,
--   nextQuotaMs }.
-- nextQuotaMs: ms until the deciding limit has one more unit of quota (remaining + 1), counted on
-- its log after this request's write (real, or hypothetical for peek; none when blocked): until the
-- entry at min(count, limit) - 1 from the newest leaves the window, which is the oldest entry
-- unless the log holds more than the limit (a lowered limit(req)). 0 when that log is empty:
-- nothing is waiting to free (only a blocked request whose cost exceeds the limit meets that).
local function check_limits(keys, key_at, argv, arg_at, n, now, clock, call_cost, align, record, out, pos)
  local max_head = -math.huge -- the newest entry of all logs: the stamp must not be older
  local shortest_window = nil
  local blocked = false
  for i = 1, n do
    local at = arg_at + 3 * i
    local window_ms = tonumber(argv[at - 2])
    local limit = tonumber(argv[at - 1])
    local cost = tonumber(argv[at]) or call_cost
    local count, head, oldest = read_log(keys[key_at + i], window_ms, now, clock)
    windows[i], limits[i], costs[i], counts[i], heads[i], oldests[i] = window_ms, limit, cost, count, head, oldest
    if count + cost > limit then blocked = true end
    if head and head > max_head then max_head = head end
    if not shortest_window or window_ms < shortest_window then shortest_window = window_ms end
  end

  if blocked then
    -- Deciding limit: the blocking one with the longest wait (-1 = never, longer than any).
    local index, wait = 0, 0
    for i = 1, n do
      local limit, cost = limits[i], costs[i]
      if counts[i] + cost > limit then
        local this_wait = -1
        if cost <= limit then
          -- Entries 0 .. limit-cost-1 (newest first) may stay; the one at limit-cost must age out.
          -- On a log filled exactly to the limit that is the oldest in the window, already read.
          local entry = oldests[i]
          if limit - cost ~= counts[i] - 1 then entry = tonumber(redis.call('LINDEX', keys[key_at + i], limit - cost)) end
          this_wait = entry + windows[i] - now
        end
        if index == 0 or (wait ~= -1 and (this_wait == -1 or this_wait > wait)) then
          index, wait = i, this_wait
        end
      end
    end
    local reset_ms, next_ms = 0, 0
    local count, limit = counts[index], limits[index]
    if heads[index] then reset_ms = heads[index] + windows[index] - now end
    if count > limit then
      -- More entries than the limit: one more unit frees when the one at limit - 1 ages out.
      next_ms = tonumber(redis.call('LINDEX', keys[key_at + index], limit - 1)) + windows[index] - now
    elseif count > 0 then
      next_ms = oldests[index] + windows[index] - now
    end
    out[pos + 1], out[pos + 2], out[pos + 3] = 0, index - 1, math.max(limit - count, 0)
    out[pos + 4], out[pos + 5], out[pos + 6], out[pos + 7] = reset_ms, wait, 0, next_ms
    return pos + 7
  end

  -- stamp = max(now, every head) keeps every log sorted newest-first even if the clock stepped
  -- back a little: such entries are trimmed late, never early.
  local stamp = math.max(now, max_head)
  if align and align >= max_head and math.abs(now - align) <= math.floor(shortest_window / 100) then
    stamp = align
  end

  -- Deciding limit: the fewest remaining after this request (ties: lowest index).
  local index, remaining = 1, limits[1] - counts[1] - costs[1]
  for i = 2, n do
    local left = limits[i] - counts[i] - costs[i]
    if left < remaining then index, remaining = i, left end
  end

  local written = 0
  if record then
    push_entries(keys, key_at, n, stamp_str(stamp), costs)
    for i = 1, n do
      if counts[i] == 0 then redis.call('PEXPIRE', keys[key_at + i], log_ttl_ms(windows[i], clock)) end
    end
    written = stamp
  end
  -- After the write the deciding log holds at most its limit: its oldest entry frees first (this
  -- request's stamp when the log was empty).
  out[pos + 1], out[pos + 2], out[pos + 3] = 1, index - 1, remaining
  out[pos + 4], out[pos + 5], out[pos + 6] = stamp + windows[index] - now, 0, written
  out[pos + 7] = (oldests[index] or stamp) + windows[index] - now
  return pos + 7
end

-- consume and peek, one request each.
-- KEYS[i]: the log of limit i.
-- ARGV, in order:
--   clock      store time in ms injected by tests, '' = Redis TIME
--   call_cost  units this request takes on a limit without its own cost, integer >= 1
--   align      '' normally; on Cluster, the stamp (ms) already written to the logs of other
--              hash tags: reused if no log here holds a newer entry and it is within 1 % of the
--              shortest window from `now` (entries then age out at most that much early), so
--              that one stamp refunds the request everywhere
--   then per limit i: window_ms (ms), limit (quota per window), cost (units this request
--              takes on limit i, '' = call_cost)
local function check_one(keys, argv, record)
  local clock = argv[1]
  local out = {}
  check_limits(keys, 0, argv, 3, #keys, now_ms(clock), clock, tonumber(argv[2]), tonumber(argv[3]), record, out, 0)
  return out
end

local function consume(keys, argv)
  return check_one(keys, argv, true)
end

local function peek(keys, argv)
  return check_one(keys, argv, false)
end

-- refund: removes one request's entries (those still there) from n logs: log i (1 .. n) is
-- keys[key_at + i], with window_ms and cost (entries to remove, '' = call_cost) at
-- argv[arg_at + 2i - 1] and argv[arg_at + 2i]. Equal stamps are interchangeable, so LREM never
-- removes a newer request's entry. Returns the number of entries removed over all logs.
local function refund_limits(keys, key_at, argv, arg_at, n, clock, call_cost, stamp)
  local entry = int_str(stamp)
  local removed = 0
  for i = 1, n do
    local key = keys[key_at + i]
    local oldest = redis.call('LINDEX', key, -1)
    -- Skip logs already trimmed past the stamp: LREM would scan them whole for nothing.
    if oldest and tonumber(oldest) <= stamp then
      local n_removed = redis.call('LREM', key, tonumber(argv[arg_at + 2 * i]) or call_cost, entry)
      if n_removed > 0 then
        removed = removed + n_removed
        -- A removal may take the entry the TTL was last refreshed for: refresh it (if the key remains).
        redis.call('PEXPIRE', key, log_ttl_ms(tonumber(argv[arg_at + 2 * i - 1]), clock))
      end
    end
  end
  return removed
end

-- refund, one request. Reply: the number of entries removed over all logs.
local function refund(keys, argv)
  -- KEYS[i]: the log of limit i.
  -- ARGV, in order:
  --   clock      store time injected by tests, '' = none (only shapes the TTL here)
  --   call_cost  entries to remove from a log without its own cost
  --   stamp      the stamp consume returned (ms)
  --   then per limit i: window_ms (ms), cost (entries to remove from log i, '' = call_cost)
  return refund_limits(keys, 0, argv, 3, #keys, argv[1], tonumber(argv[2]), tonumber(argv[3]))
end
