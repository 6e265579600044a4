-- batch: the consume / peek / refund calls one process made in one event-loop turn, in one call
-- (needs prelude.lua, sliding-log.lua, gcra.lua, penalty-box.lua and consume.lua). They run one after another in arrival
-- order, each exactly as it would alone: a decision sees every write of the ones before it. Each
-- runs under pcall, so an error (WRONGTYPE, a key another node serves) fails that decision
-- alone; none writes before its last read (a long log's LPUSH is one: it answers the log's
-- length, and nothing that can fail follows it), so a failed decision has written nothing. Store time
-- is read once per call: its decisions were made in one turn and share that `now` (a later one
-- is decided at most one call's run time, well under a ms, early); stamps stay per decision
-- (max(now, newest entry of its logs), or its align).

-- What a decision does: the low two bits of its code (see run_batch). A refund and an aligned
-- consume are followed by their stamp.
local CONSUME, PEEK, REFUND, ALIGNED_CONSUME = 0, 1, 2, 3

-- Limit groups of the current call: where each one's limits start among the parsed ones (see
-- parse_limits), and its limit count. Reused by every call (one runs at a time).
local group_base, group_n = {}, {}

-- Re-sent calls. A client that loses its connection after a call was written but before its reply
-- came back (ioredis re-sends such commands after reconnecting) runs the same call twice: its
-- consumes would be counted twice and its refunds given back twice. A call that writes therefore
-- carries an id unique to it, and leaves its reply in a record `{<tag of its first key>}#call:<id>`
-- (see in_slot_of) for CALL_RECORD_TTL_MS: the same call arriving again answers that reply and
-- writes nothing. 10 s outlasts any reconnect a client makes while it still holds the command; a
-- call costs one GET and one SET, and its record ~100 bytes for those 10 s.
local CALL_RECORD_TTL_MS = '10000' -- a string: see int_str

-- The message of an error caught by pcall: redis.call raises a table { err = message }.
local function error_text(err)
  if type(err) == 'table' and err.err then return err.err end
  return tostring(err)
end

-- Runs the decisions found at argv[arg_at ..], their keys in order at keys[key_at + 1 ..].
-- ARGV from arg_at:
--   clock   store time in ms injected by tests, '' = Redis TIME (read once, at the first
--           consume or peek)
--   call_id unique id of this call when it writes (a consume or refund), '' = none (see
--           in_slot_of)
--   groups  the number of limit groups, then per group: n (its number of limits), then per limit
--           window_ms, limit, cost, shape (see check_limits). Every limit's cost is sent (no call
--           cost to fall back on). The decisions of one limiter share a group: only keys differ.
--   then per decision: its code, (group × 2 + same_keys) × 4 + what it does (CONSUME, PEEK,
--           REFUND, ALIGNED_CONSUME; group 0-based), then for a refund the stamp to remove, for an
--           aligned consume its align (see check_limits). Its n keys are the next ones in KEYS, or,
--           with same_keys 1, those of the decision before it (none sent again: a hot key). A
--           negative code -r is a run: r consumes, each with the keys and the limit group of the
--           decision before it (a hot key's turn: one argument instead of one per decision).
-- Reply: one flat array: the store time the decisions were made at (`now`; 0 when none read it:
-- refunds only), then per decision in order: consume and peek the 7 integers of check_limits, or
-- the 4 of one_log_allowed (a consume allowed on one sliding log, which most are); refund 1
-- integer (units given back); a failed decision the error's message (a string) instead.
-- Consumes of a run allowed together may answer as one: -count, then the first one's reply, each
-- next one having one unit remaining fewer (see consume_known_log).
-- check_limits writes its reply only after its last command, so a failed decision leaves no
-- partial reply behind. The array goes packed with cmsgpack, as one bulk string: a client decodes
-- that ~5 times faster than as many RESP integers (src/stores/redis/msgpack.ts reads it), Redis
-- writes one value instead of hundreds, and the call record holds the very same bytes.
local function run_batch(keys, key_at, argv, arg_at)
  local clock, call_id = argv[arg_at], argv[arg_at + 1]
  local record_key = nil
  if call_id ~= '' then
    record_key = in_slot_of(keys[key_at + 1], '#call:' .. call_id)
    if record_key then
      -- pcall: on Cluster a cross-slot call's first key may have just left this node; the call
      -- then runs without a record (its decisions meet the same error and are resent by slot).
      local ok, seen = pcall(redis.call, 'GET', record_key)
      if not ok then
        record_key = nil
      elseif seen then
        return seen
      end
    end
  end
  local at, base = arg_at + 3, 0
  local groups = argv[arg_at + 2]
  for g = 1, num_cache[groups] or num_miss(groups) do
    local n = num_cache[argv[at]] or num_miss(argv[at])
    parse_limits(argv, at, n, nil, base) -- every limit's cost is sent
    group_base[g], group_n[g] = base, n
    at, base = at + 1 + 4 * n, base + n
  end
  local now = nil
  forget_known() -- a new call: another `now`, and keys others may have written since
  discard_pushes()
  local out = { 0 } -- `now`, set last
  local pos = 1
  local last = #argv
  local previous_key_at = key_at
  local group = nil
  while at <= last do
    local code = num_cache[argv[at]] or num_miss(argv[at]) -- codes recur: see num_cache
    local operation, same_keys, count
    if code < 0 then
      -- A run: -code consumes, each on the keys and in the limit group of the decision before.
      operation, same_keys, count = CONSUME, 1, -code
      if not group then error('a batch call cannot start with a run') end
    else
      operation = code % 4
      local rest = (code - operation) / 4
      same_keys = rest % 2
      group = (rest - same_keys) / 2 + 1
      count = 1
    end
    local base, n = group_base[group], group_n[group]
    if same_keys == 1 then
      key_at = previous_key_at
    else
      previous_key_at = key_at
    end
    local stamp = nil
    if operation == REFUND or operation == ALIGNED_CONSUME then
      stamp = tonumber(argv[at + 1])
      at = at + 2
    else
      at = at + 1
    end
    while count > 0 do
      local ok, result, decided = true, nil, nil
      if operation == REFUND then
        ok, result = pcall(refund_limits, keys, key_at, base, n, clock, stamp)
        forget_known() -- it removed entries
        if ok then
          out[pos + 1] = result
          pos = pos + 1
        end
      else
        if not now then now = now_ms(clock) end
        if operation == CONSUME and n == 1 then
          -- One sliding log of cost 1 (most decisions): a lean path decides it (a hot key's
          -- repeats: as many in a row as it can) when it can, and leaves result nil when
          -- check_limits must.
          if same_keys == 1 then
            result, decided = consume_known_log(keys[key_at + 1], base + 1, now, out, pos, count)
          else
            ok, result = pcall(consume_one_log, keys[key_at + 1], base + 1, now, clock, out, pos)
          end
        end
        if ok and not result then
          ok, result = pcall(check_limits, keys, key_at, base, n, now, clock, stamp, operation ~= PEEK, out, pos, true)
        end
        if ok then pos = result end
      end
      if not ok then
        out[pos + 1] = error_text(result)
        pos = pos + 1
      end
      count = count - (decided or 1)
    end
    key_at = key_at + n
  end
  flush_pushes()
  out[1] = now or 0
  local reply = cmsgpack.pack(out)
  if record_key then redis.call('SET', record_key, reply, 'PX', CALL_RECORD_TTL_MS) end
  return reply
end

-- KEYS: every decision's keys, in order (one slot on Cluster). ARGV: as run_batch reads it.
local function batch(keys, argv)
  return run_batch(keys, 0, argv, 1)
end

-- Cluster: decisions of several slots served by the node that runs it (registered with the
-- allow-cross-slot-keys flag). Redis refuses declared KEYS of different slots, so none are
-- declared: ARGV[1] is the number of keys k, ARGV[2 .. k + 1] the keys, then as run_batch reads
-- it. A key this node does not serve (a stale slot map, a slot being migrated) fails only its
-- decision ("non local key"), which the caller then resends through the Cluster client.
local function batch_cross_slot(_, argv)
  return run_batch(argv, 1, argv, tonumber(argv[1]) + 2)
end
