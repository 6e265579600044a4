-- Idempotency records (needs prelude.lua). One HASH per record key:
--   state    'run' (the handler is running) | 'done' (response stored)
--   token    the holder's token; fp: the request fingerprint; fence: fencing token of the run
--   status, headers (JSON text), body (binary string; absent = not replayable), once done
-- The record's PEXPIRE is the in-flight lease while running, the replay TTL once done.

-- begin. Reply: { 'acquired', fence } | { 'in-flight', ms left on the lease } | { 'mismatch' }
--      | { 'replay', status, headers, body or nil }.
local function idempotency_begin(keys, argv)
  -- KEYS: record_key (the HASH above), fence_key (string: the last fencing token issued).
  -- ARGV: clock (store time in ms injected by tests, '' = Redis TIME), token (the caller's),
  -- fingerprint (of the request), lease_ms (the in-flight lease, ms).
  local record_key, fence_key = keys[1], keys[2]
  -- lease_arg, the string as sent, for commands (see int_str); lease_ms, its number, for fences.
  local clock, token, fingerprint, lease_arg = argv[1], argv[2], argv[3], argv[4]
  local lease_ms = tonumber(lease_arg)
  local record = redis.call('HMGET', record_key, 'state', 'token', 'fp', 'fence')
  local state = record[1]
  if not state then
    local fence = next_fence(fence_key, clock, lease_ms)
    redis.call('HSET', record_key, 'state', 'run', 'token', token, 'fp', fingerprint, 'fence', int_str(fence))
    redis.call('PEXPIRE', record_key, lease_arg)
    return { 'acquired', fence }
  end
  if state == 'run' and record[2] == token then
    -- A re-sent begin (reconnect) of the request that holds the record: still acquired.
    redis.call('PEXPIRE', record_key, lease_arg)
    return { 'acquired', tonumber(record[4]) }
  end
  if record[3] ~= fingerprint then return { 'mismatch' } end
  if state == 'run' then return { 'in-flight', math.max(redis.call('PTTL', record_key), 0) } end
  if state ~= 'done' then return redis.error_reply('ERR ratelock: idempotency record has unknown state') end
  local response = redis.call('HMGET', record_key, 'status', 'headers', 'body')
  return { 'replay', tonumber(response[1]), response[2], response[3] }
end

-- Whether `token` holds the record while its handler runs.
local function holds_running(record_key, token)
  local record = redis.call('HMGET', record_key, 'state', 'token')
  return record[1] == 'run' and record[2] == token
end

-- extend. Reply 1 if extended, else 0.
local function idempotency_extend(keys, argv)
  -- KEYS: record_key. ARGV: token, lease_ms (the new in-flight lease, ms).
  local record_key = keys[1]
  local token, lease_ms = argv[1], argv[2]
  if not holds_running(record_key, token) then return 0 end
  redis.call('PEXPIRE', record_key, lease_ms)
  return 1
end

-- complete. Reply 1 if stored, or stored already by this token (the record keeps the token that
-- completed it); 0 if `token` no longer holds the record (nothing written).
local function idempotency_complete(keys, argv)
  -- KEYS: record_key, fence_key. ARGV: token, status (HTTP status), headers (JSON), has_body
  -- ('1' | '0'), body (binary, ignored unless has_body), ttl_ms (how long the replay is kept, ms),
  -- fence and fingerprint of the holder's run ('' = not given).
  local record_key, fence_key = keys[1], keys[2]
  local token, status, headers, has_body, body, ttl_ms = argv[1], argv[2], argv[3], argv[4], argv[5], argv[6]
  local fence, fingerprint = argv[7], argv[8]
  local record = redis.call('HMGET', record_key, 'state', 'token')
  if record[1] then
    if record[2] ~= token then return 0 end
    -- Done by this token already: this complete re-sent after a reconnect, or retried by its
    -- lease after a failure that landed. Tokens are unique per lease, so nobody else completed it.
    if record[1] == 'done' then return 1 end
    if record[1] ~= 'run' then return 0 end
  else
    -- The lease lapsed (Redis stalled past it, or the handler outran it). Every begin that
    -- acquires sets the fence key to a greater value, so while it still holds this run's fence
    -- nobody has run the operation since, and the response may be stored as if in time.
    if (fence or '') == '' or redis.call('GET', fence_key) ~= fence then return 0 end
    redis.call('HSET', record_key, 'token', token, 'fp', fingerprint, 'fence', fence)
  end
  if has_body == '1' then
    redis.call('HSET', record_key, 'state', 'done', 'status', status, 'headers', headers, 'body', body)
  else
    redis.call('HSET', record_key, 'state', 'done', 'status', status, 'headers', headers)
  end
  redis.call('PEXPIRE', record_key, ttl_ms)
  return 1
end

-- abort. Reply 1 if the running record was deleted (a retry may run; also to this call re-sent
-- after a reconnect: see mark_settled), else 0.
local function idempotency_abort(keys, argv)
  -- KEYS: record_key. ARGV: token, call_id (unique to this call, '' = none).
  local record_key = keys[1]
  local token, call_id = argv[1], argv[2]
  if not holds_running(record_key, token) then
    if settled_before(record_key, call_id) then return 1 end
    return 0
  end
  redis.call('DEL', record_key)
  mark_settled(record_key, call_id)
  return 1
end
