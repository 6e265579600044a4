-- consume / peek / refund on sliding logs (needs prelude.lua and sliding-log.lua).

-- consume and peek: checks every limit and, when `record` is true (consume) and all have room,
-- writes the request to all of them; else writes nothing.
-- Reply: { allowed 0|1, index (0-based deciding limit), remaining, resetMs, retryAfterMs, stamp }.
local function check_limits(keys, argv, record)
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
  local clock = argv[1]
  local call_cost = tonumber(argv[2])
  local align = tonumber(argv[3])
  local now = now_ms(clock)
  local n = #keys
  local windows, limits, costs, counts, heads = {}, {}, {}, {}, {}
  local max_head = -math.huge -- the newest entry of all logs: the stamp must not be older
  local shortest_window = nil
  local blocked = false
  for i = 1, n do
    local window_ms = tonumber(argv[1 + 3 * i])
    local limit = tonumber(argv[2 + 3 * i])
    local cost = tonumber(argv[3 + 3 * i]) or call_cost
    local count, head = read_log(keys[i], window_ms, now, log_ttl_ms(window_ms, clock))
    windows[i], limits[i], costs[i], counts[i], heads[i] = window_ms, limit, cost, count, head
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
          this_wait = tonumber(redis.call('LINDEX', keys[i], limit - cost)) + windows[i] - now
        end
        if index == 0 or (wait ~= -1 and (this_wait == -1 or this_wait > wait)) then
          index, wait = i, this_wait
        end
      end
    end
    local reset_ms = 0
    if heads[index] then reset_ms = heads[index] + windows[index] - now end
    return { 0, index - 1, math.max(limits[index] - counts[index], 0), reset_ms, wait, 0 }
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

  if not record then return { 1, index - 1, remaining, stamp + windows[index] - now, 0, 0 } end
  push_entries(keys, int_str(stamp), costs)
  for i = 1, n do
    if counts[i] == 0 then redis.call('PEXPIRE', keys[i], log_ttl_ms(windows[i], clock)) end
  end
  return { 1, index - 1, remaining, stamp + windows[index] - now, 0, stamp }
end

local function consume(keys, argv)
  return check_limits(keys, argv, true)
end

local function peek(keys, argv)
  return check_limits(keys, argv, false)
end

-- refund: removes one request's entries (those still there) from every log.
-- Equal stamps are interchangeable, so LREM never removes a newer request's entry.
-- Reply: the number of entries removed over all logs.
local function refund(keys, argv)
  -- KEYS[i]: the log of limit i.
  -- ARGV, in order:
  --   clock      store time injected by tests, '' = none (only shapes the TTL here)
  --   call_cost  entries to remove from a log without its own cost
  --   stamp      the stamp consume returned (ms)
  --   then per limit i: window_ms (ms), cost (entries to remove from log i, '' = call_cost)
  local clock = argv[1]
  local call_cost = tonumber(argv[2])
  local stamp = tonumber(argv[3])
  local removed = 0
  for i = 1, #keys do
    local oldest = redis.call('LINDEX', keys[i], -1)
    -- Skip logs already trimmed past the stamp: LREM would scan them whole for nothing.
    if oldest and tonumber(oldest) <= stamp then
      local n = redis.call('LREM', keys[i], tonumber(argv[3 + 2 * i]) or call_cost, int_str(stamp))
      if n > 0 then
        removed = removed + n
        -- A removal may take the entry the TTL was last refreshed for: refresh it (if the key remains).
        redis.call('PEXPIRE', keys[i], log_ttl_ms(tonumber(argv[2 + 2 * i]), clock))
      end
    end
  end
  return removed
end
