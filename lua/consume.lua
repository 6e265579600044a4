-- consume / peek / refund over a request's limits: sliding logs, GCRA limits and penalty boxes
-- (needs prelude.lua, sliding-log.lua, gcra.lua and penalty-box.lua).

-- What a limit is, from the 4th field of its ARGV (`shape`): '' a sliding log; a number the burst
-- of a GCRA limit; 'b<ms>' a penalty box closing for <ms> (its window = how long strikes are
-- remembered, its limit = the strikes that close it).
local LOG, GCRA, BOX = 1, 2, 3
local BOX_BYTE = 98 -- 'b'

-- Per-limit state of check_limits, reused by every call: one check runs at a time, and entries
-- past the current call's n are never read. GCRA limits use tats (their TAT), periods and bursts;
-- boxes use counts (their strikes) and bursts (how long they close).
local kinds, windows, limits, costs, counts, heads, oldests, singles = {}, {}, {}, {}, {}, {}, {}, {}
local tats, periods, bursts = {}, {}, {}

-- The limits of the current call, parsed once (parse_limits): a batch call's decisions share
-- their limit group's fields, and tonumber() of a field costs about a fifth of a command. Limit j
-- of the call is parsed_kinds[j] .. parsed_bursts[j]; a decision's limit i is j = base + i.
local parsed_kinds, parsed_windows, parsed_limits, parsed_costs, parsed_bursts = {}, {}, {}, {}, {}

-- The previous decision of the same batch call (same `now`), limit by limit: its key, kind and
-- the state it left (a log: count, head, oldest, window, whether a STRING; GCRA: TAT, period,
-- burst). A decision
-- whose limit i has the same key, kind and parameters takes that state instead of reading it
-- again, so a hot key costs one read per batch, not one per decision. Plain arrays reused by
-- every call, so a decision allocates nothing for it. Only the first `known_n` limits hold; 0
-- forgets them all (a new batch, a refund, a failed or boxed decision).
local known_keys, known_kinds, known_a, known_b, known_c, known_d, known_e = {}, {}, {}, {}, {}, {}, {}
local known_n = 0

local function forget_known()
  known_n = 0
end

-- int_str of the last stamp written (~1 k instructions each time): the decisions of one batch
-- call mostly share one stamp.
local last_stamp, last_stamp_str = nil, nil
local function stamp_str(stamp)
  if stamp ~= last_stamp then last_stamp, last_stamp_str = stamp, int_str(stamp) end
  return last_stamp_str
end

-- Kind of the limit whose shape field is `shape` (see LOG, GCRA, BOX).
local function kind_of(shape)
  if shape == '' then return LOG end
  if string.byte(shape, 1) == BOX_BYTE then return BOX end
  return GCRA
end

-- Parses n limits from argv[arg_at + 1 ..] (window_ms, limit, cost, shape each; cost '' =
-- call_cost) into parsed_*[base + 1 .. base + n]. bursts: a GCRA limit's burst, a box's ms closed.
local function parse_limits(argv, arg_at, n, call_cost, base)
  for i = 1, n do
    local at, j = arg_at + 4 * i, base + i
    local shape = argv[at]
    local kind = kind_of(shape)
    local window, quota, cost = argv[at - 3], argv[at - 2], argv[at - 1] -- recurring: see num_cache
    parsed_kinds[j], parsed_windows[j] = kind, num_cache[window] or num_miss(window)
    parsed_limits[j] = num_cache[quota] or num_miss(quota)
    if cost == '' then parsed_costs[j] = call_cost else parsed_costs[j] = num_cache[cost] or num_miss(cost) end
    if kind == GCRA then
      parsed_bursts[j] = tonumber(shape)
    elseif kind == BOX then
      parsed_bursts[j] = tonumber(string.sub(shape, 2))
    end
  end
end

-- Units left on limit i at `now` after taking `taken` more (0 = as it stands); may be negative.
local function units_left(i, now, taken)
  if kinds[i] == LOG then return limits[i] - counts[i] - taken end
  local period = periods[i]
  return math.floor((bursts[i] * period - (tats[i] + taken * period - now)) / period + GCRA_EPSILON)
end

-- Whether limit i has room for its cost at `now`.
local function fits(i, now)
  if kinds[i] == LOG then return counts[i] + costs[i] <= limits[i] end
  return tats[i] + costs[i] * periods[i] - now <= bursts[i] * periods[i] + GCRA_EPSILON
end

-- The reply of a call refused by the penalty box i, closed for `closed_ms` (see check_limits).
local function boxed_reply(out, pos, i, closed_ms)
  out[pos + 1], out[pos + 2], out[pos + 3] = 2, i - 1, 0
  out[pos + 4], out[pos + 5], out[pos + 6], out[pos + 7] = closed_ms, closed_ms, 0, closed_ms
  return pos + 7
end

-- Keeps what this decision knows of its limits for the next one (see known_keys): the state it
-- read, or, when it wrote at `stamp` (nil = no write), the state after its write. A key listed
-- twice in one decision is forgotten: written twice, neither slot knows its state.
local function remember(keys, key_at, n, stamp)
  for i = 1, n do
    local kind = kinds[i]
    known_kinds[i] = kind
    known_keys[i] = keys[key_at + i]
    if kind == LOG then
      if stamp then
        known_a[i], known_b[i], known_c[i] = counts[i] + costs[i], stamp, oldests[i] or stamp
        known_e[i] = counts[i] == 0 and costs[i] == 1 -- as write_log wrote it
      else
        known_a[i], known_b[i], known_c[i], known_e[i] = counts[i], heads[i], oldests[i], singles[i]
      end
      known_d[i] = windows[i]
    elseif kind == GCRA then
      if stamp then known_a[i] = tats[i] + costs[i] * periods[i] else known_a[i] = tats[i] end
      known_b[i], known_c[i] = periods[i], bursts[i]
    end
  end
  for i = 2, n do
    for j = 1, i - 1 do
      if known_keys[j] == known_keys[i] then known_keys[i], known_keys[j] = false, false end
    end
  end
  known_n = n
end

-- consume and peek: checks n limits and, when `record` is true (consume) and all have room,
-- writes the request to all of them; else writes nothing to them. Limit i (1 .. n) is
-- keys[key_at + i], parsed at base + i (see parse_limits). `now` is the store time (ms) the check
-- runs at; `align` as in the ARGV of check_one (nil = none). Writes its reply to
-- out[pos + 1 .. pos + 7], only after its last command, and returns pos + 7:
-- { allowed 0|1|2, index (0-based deciding limit), remaining, resetMs, retryAfterMs, stamp,
--   nextQuotaMs }.
-- allowed 2: refused by a penalty box (index names it): closed now, or closed by this refusal;
-- resetMs, retryAfterMs and nextQuotaMs are then the ms until it opens. A closed box refuses
-- before any limit is read; a consume refused by its limits strikes every box of the call, and
-- one allowed clears their strikes. Peek never strikes.
-- nextQuotaMs: ms until the deciding limit has one more unit of quota (remaining + 1), counted on
-- its log after this request's write (real, or hypothetical for peek; none when blocked): until the
-- entry at min(count, limit) - 1 from the newest leaves the window, which is the oldest entry
-- unless the log holds more than the limit (a lowered limit(req)). 0 when that log is empty:
-- nothing is waiting to free (only a blocked request whose cost exceeds the limit meets that).
-- For a GCRA limit: until its TAT has fallen by enough for one more unit (0 when all are free).
-- `batched`: one of the decisions of a batch call, which may take what the previous one of the
-- same call knew of its limits (see known_keys).
local function check_limits(keys, key_at, base, n, now, clock, align, record, out, pos, batched)
  -- Limits the previous decision left known (see known_keys); none while this one runs, so a
  -- decision that fails or answers early leaves nothing behind.
  local reusable = batched and known_n or 0
  known_n = 0
  -- Boxes first: a closed one refuses without a limit being read.
  local boxes = false
  for i = 1, n do
    local j = base + i
    local kind = parsed_kinds[j]
    kinds[i], windows[i], limits[i], costs[i] = kind, parsed_windows[j], parsed_limits[j], parsed_costs[j]
    if kind == BOX then
      boxes = true
      local for_ms = parsed_bursts[j]
      local closed_ms, strikes = read_box(keys[key_at + i], now, for_ms, windows[i])
      if closed_ms > 0 then return boxed_reply(out, pos, i, closed_ms) end
      bursts[i], counts[i] = for_ms, strikes
    end
  end

  local max_head = -math.huge -- the newest entry of all logs: the stamp must not be older
  local shortest_window = nil
  local blocked = false
  for i = 1, n do
    local kind = kinds[i]
    if kind ~= BOX then
      local window_ms = windows[i]
      local key = keys[key_at + i]
      local same = i <= reusable and known_keys[i] == key and known_kinds[i] == kind
      if kind == LOG then
        local count, head, oldest, single
        if same and known_d[i] == window_ms then
          count, head, oldest, single = known_a[i], known_b[i], known_c[i], known_e[i]
        else
          count, head, oldest, single = read_log(key, window_ms, now)
        end
        counts[i], heads[i], oldests[i], singles[i] = count, head, oldest, single
        if head and head > max_head then max_head = head end
        if not shortest_window or window_ms < shortest_window then shortest_window = window_ms end
      else
        local burst = parsed_bursts[base + i]
        local period = window_ms / limits[i]
        bursts[i], periods[i] = burst, period
        if same and known_b[i] == period and known_c[i] == burst then
          tats[i] = known_a[i]
        else
          tats[i] = read_tat(key, now, period, burst)
        end
      end
      if not fits(i, now) then blocked = true end
    end
  end

  if blocked then
    -- Deciding limit: the blocking one with the longest wait (-1 = never, longer than any).
    local index, wait = 0, 0
    for i = 1, n do
      if kinds[i] ~= BOX and not fits(i, now) then
        local limit, cost = limits[i], costs[i]
        local this_wait = -1
        if kinds[i] == GCRA then
          this_wait = gcra_wait_ms(tats[i], now, periods[i], bursts[i], cost)
        elseif cost <= limit then
          -- Entries 0 .. limit-cost-1 (newest first) may stay; the one at limit-cost must age out.
          -- On a log filled exactly to the limit that is the oldest in the window, already read.
          local entry = oldests[i]
          if limit - cost ~= counts[i] - 1 then
            flush_pushes()
            entry = tonumber(redis.call('LINDEX', keys[key_at + i], int_str(limit - cost)))
          end
          this_wait = entry + windows[i] - now
        end
        if index == 0 or (wait ~= -1 and (this_wait == -1 or this_wait > wait)) then
          index, wait = i, this_wait
        end
      end
    end
    local reset_ms, next_ms, remaining = 0, 0, 0
    if kinds[index] == GCRA then
      reset_ms = math.ceil(tats[index] - now)
      next_ms = gcra_next_ms(tats[index], now, periods[index], bursts[index])
      remaining = math.max(units_left(index, now, 0), 0)
    else
      local count, limit = counts[index], limits[index]
      if heads[index] then reset_ms = heads[index] + windows[index] - now end
      if count > limit then
        -- More entries than the limit: one more unit frees when the one at limit - 1 ages out.
        flush_pushes()
        next_ms = tonumber(redis.call('LINDEX', keys[key_at + index], int_str(limit - 1))) + windows[index] - now
      elseif count > 0 then
        next_ms = oldests[index] + windows[index] - now
      end
      remaining = math.max(limit - count, 0)
    end
    if boxes and record then
      -- A refusal strikes every box; one that closes now answers for the decision.
      for i = 1, n do
        if kinds[i] == BOX then
          local closed_ms = strike_box(keys[key_at + i], counts[i], now, limits[i], bursts[i], windows[i], clock)
          if closed_ms > 0 then return boxed_reply(out, pos, i, closed_ms) end
        end
      end
    end
    if batched then remember(keys, key_at, n, nil) end
    out[pos + 1], out[pos + 2], out[pos + 3] = 0, index - 1, remaining
    out[pos + 4], out[pos + 5], out[pos + 6], out[pos + 7] = reset_ms, wait, 0, next_ms
    return pos + 7
  end

  -- stamp = max(now, every head) keeps every log sorted newest-first even if the clock stepped
  -- back a little: such entries are trimmed late, never early.
  local stamp = math.max(now, max_head)
  if align and shortest_window and align >= max_head and math.abs(now - align) <= math.floor(shortest_window / 100) then
    stamp = align
  end

  -- Deciding limit: the fewest remaining after this request (ties: lowest index).
  local index, remaining = 0, math.huge
  for i = 1, n do
    if kinds[i] ~= BOX then
      local left = units_left(i, now, costs[i])
      if left < remaining then index, remaining = i, left end
    end
  end

  local written = 0
  if record then
    local entry = stamp_str(stamp)
    for i = 1, n do
      local kind = kinds[i]
      if kind == LOG then
        local key, count, single, oldest, head = keys[key_at + i], counts[i], singles[i], oldests[i], heads[i]
        -- A key listed twice holds what the earlier listing just wrote.
        for j = 1, i - 1 do
          if kinds[j] == LOG and keys[key_at + j] == key then
            single, count, oldest, head = count == 0 and costs[j] == 1, count + costs[j], oldest or stamp, stamp
          end
        end
        write_log(key, count, single, oldest, head, stamp, entry, costs[i], windows[i], now, clock)
      elseif kind == GCRA then
        write_tat(keys[key_at + i], tats[i] + costs[i] * periods[i], now, clock)
      elseif counts[i] > 0 then
        redis.call('DEL', keys[key_at + i]) -- an allowed request clears the box's strikes
      end
    end
    written = stamp
  end
  if batched then remember(keys, key_at, n, written > 0 and stamp or nil) end
  out[pos + 1], out[pos + 2], out[pos + 3] = 1, index - 1, remaining
  out[pos + 6] = written
  if kinds[index] == GCRA then
    local tat = tats[index] + costs[index] * periods[index]
    out[pos + 4], out[pos + 5], out[pos + 7] = math.ceil(tat - now), 0, gcra_next_ms(tat, now, periods[index], bursts[index])
  else
    -- After the write the deciding log holds at most its limit: its oldest entry frees first (this
    -- request's stamp when the log was empty).
    out[pos + 4], out[pos + 5] = stamp + windows[index] - now, 0
    out[pos + 7] = (oldests[index] or stamp) + windows[index] - now
  end
  return pos + 7
end

-- A batch call's reply for a consume of cost 1 allowed on ONE sliding log that held `count`
-- entries in the window (`oldest` the oldest of them, nil when none), written at `stamp`: what
-- check_limits answers, in 4 values instead of 7. ONE_LOG_ALLOWED, remaining, stamp - now, stamp -
-- (oldest or stamp); the caller knows the window, and the call's `now` heads the reply (see
-- run_batch), so it derives the rest: index 0, retryAfterMs 0, resetMs = window + (stamp - now),
-- nextQuotaMs = window + (stamp - now) - (stamp - oldest). Packing a value costs Redis ~900
-- instructions (~6 % of a decision over many keys for these 3 fewer); small differences also
-- pack into 1 byte where a stamp takes 9.
local ONE_LOG_ALLOWED = 3
local function one_log_allowed(out, pos, limit, count, stamp, oldest, now)
  out[pos + 1], out[pos + 2], out[pos + 3], out[pos + 4] = ONE_LOG_ALLOWED, limit - count - 1, stamp - now, stamp - (oldest or stamp)
  return pos + 4
end

-- A hot key's repeats, decided without check_limits: consumes of cost 1 on ONE sliding log whose
-- state the previous decision of the same call left known (see known_keys), that fit, and whose
-- write is a deferred push in the same window epoch (no TTL move). That is check_limits' allowed
-- path for this case alone, step for step (the same answers, the same write, the same state left
-- known), at a fraction of its cost. Decides up to `wanted` of them in a row, as many as fit:
-- they share one stamp, so all but `remaining` of their replies are equal. Writes one reply (see
-- one_log_allowed), or for several a run: -count, then the first one's reply (each next one has
-- one remaining fewer; src/stores/redis/replies.ts expands it). `j`: the limit's index among the parsed ones.
-- Returns the new pos and how many it decided, or nil when check_limits must decide the next
-- one; runs no command, so it cannot fail half-way.
local function consume_known_log(key, j, now, out, pos, wanted)
  if known_n ~= 1 or known_kinds[1] ~= LOG or known_keys[1] ~= key or parsed_kinds[j] ~= LOG then return nil end
  local window_ms, limit = parsed_windows[j], parsed_limits[j]
  local count, head, oldest = known_a[1], known_b[1], known_c[1]
  if known_d[1] ~= window_ms or parsed_costs[j] ~= 1 or known_e[1] or count == 0 or count + 1 > limit then return nil end
  local stamp = now -- max(now, head); a new window epoch moves the TTL: check_limits does that
  if head >= now then
    stamp = head
  elseif now - now % window_ms ~= head - head % window_ms then -- another epoch (see write_log)
    return nil
  end
  local decided = math.min(wanted, limit - count)
  if not add_pending(key, stamp_str(stamp), decided) then return nil end
  known_a[1], known_b[1] = count + decided, stamp -- its oldest entry and LIST form stay
  if decided > 1 then
    out[pos + 1] = -decided
    pos = pos + 1
  end
  return one_log_allowed(out, pos, limit, count, stamp, oldest, now), decided
end

-- Leaves one sliding log's state known for the next decision (see known_keys).
local function know_one_log(key, window_ms, count, head, oldest, single)
  known_n, known_keys[1], known_kinds[1] = 1, key, LOG
  known_a[1], known_b[1], known_c[1], known_d[1], known_e[1] = count, head, oldest, window_ms, single
end

-- A consume of cost 1 on ONE sliding log, decided without check_limits: its path for this case
-- (the same decision, reply, log afterwards and state left known). Most decisions of a call over
-- many keys are such a first look at a key: 24 of them per call cost 5.3 µs of FCALL time each
-- this way, 6.5 through check_limits. `j`: the limit's index among the parsed ones. Returns
-- pos + 4 (one_log_allowed's reply), or nil when check_limits must decide: not this case, or no
-- room (the log's state is then left known, so check_limits answers the refusal without reading
-- it again). Writes only after its last read, as check_limits does, but for a long log's push,
-- which tells its length (see read_log) and is taken back when the request does not fit.
local function consume_one_log(key, j, now, clock, out, pos)
  known_n = 0
  if parsed_kinds[j] ~= LOG or parsed_costs[j] ~= 1 then return nil end
  local window_ms, limit = parsed_windows[j], parsed_limits[j]
  local count, head, oldest, single, expired_left = read_log(key, window_ms, now, true)
  local stamp = now -- max(now, head), as check_limits stamps
  if head and head > now then stamp = head end
  if not count then
    -- A long log whose length the push answers (see read_log): the request goes in first and is
    -- taken back (LPOP) if it finds no room, before anything else runs, so nobody sees it.
    count = redis.call('LPUSH', key, stamp_str(stamp)) - 1 - expired_left
    if count + 1 > limit then
      redis.call('LPOP', key)
      know_one_log(key, window_ms, count, head, oldest, false)
      return nil
    end
    if stamp - stamp % window_ms ~= head - head % window_ms then -- a new window epoch (see write_log)
      redis.call('PEXPIRE', key, log_ttl_ms(stamp, window_ms, now, clock))
    end
  elseif count + 1 > limit then
    know_one_log(key, window_ms, count, head, oldest, single)
    return nil
  else
    write_log(key, count, single, oldest, head, stamp, stamp_str(stamp), 1, window_ms, now, clock)
  end
  know_one_log(key, window_ms, count + 1, stamp, oldest or stamp, count == 0)
  return one_log_allowed(out, pos, limit, count, stamp, oldest, now)
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
--              takes on limit i, '' = call_cost), shape ('' sliding log; see kind_of)
local function check_one(keys, argv, record)
  local clock = argv[1]
  local out = {}
  discard_pushes()
  parse_limits(argv, 3, #keys, tonumber(argv[2]), 0)
  check_limits(keys, 0, 0, #keys, now_ms(clock), clock, tonumber(argv[3]), record, out, 0)
  flush_pushes()
  return out
end

local function consume(keys, argv)
  return check_one(keys, argv, true)
end

local function peek(keys, argv)
  return check_one(keys, argv, false)
end

-- refund: gives one request's units back on n limits: limit i (1 .. n) is keys[key_at + i],
-- parsed at base + i (see parse_limits; its cost: the units to give back). A log loses that many
-- entries of `stamp` (those still there: equal stamps are interchangeable, so LREM never removes
-- a newer request's entry); a GCRA limit's TAT moves back; a box is left as it is. Returns the
-- units given back over all limits.
local function refund_limits(keys, key_at, base, n, clock, stamp)
  flush_pushes()
  local entry = int_str(stamp)
  local removed = 0
  local now = nil
  for i = 1, n do
    local j = base + i
    local key, kind, cost = keys[key_at + i], parsed_kinds[j], parsed_costs[j]
    if kind == LOG then
      local oldest = redis.pcall('LINDEX', key, '-1')
      if type(oldest) == 'table' and wrong_type(oldest) then
        -- A one-entry log (a STRING): given back if it is this request's.
        if single_entry(key) == stamp then
          redis.call('DEL', key)
          removed = removed + 1
        end
      -- Skip logs already trimmed past the stamp: LREM would scan them whole for nothing.
      elseif oldest and tonumber(oldest) <= stamp then
        -- No TTL refresh: removing entries never needs one (see log_ttl_ms).
        removed = removed + redis.call('LREM', key, int_str(cost), entry)
      end
    elseif kind == GCRA then
      if not now then now = now_ms(clock) end
      removed = removed + refund_tat(key, now, parsed_windows[j] / parsed_limits[j], cost, clock)
    end
  end
  return removed
end

-- refund, one request. Reply: the number of entries removed over all logs.
local function refund(keys, argv)
  -- KEYS[i]: the log of limit i.
  -- ARGV, in order:
  --   clock      store time injected by tests, '' = Redis TIME (read only for a GCRA limit)
  --   call_cost  units to give back on a limit without its own cost
  --   stamp      the stamp consume returned (ms)
  --   then per limit i: window_ms, limit, cost ('' = call_cost), shape, as consume reads them
  discard_pushes()
  parse_limits(argv, 3, #keys, tonumber(argv[2]), 0)
  return refund_limits(keys, 0, 0, #keys, argv[1], tonumber(argv[3]))
end
