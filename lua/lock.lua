-- Lock lease with a fencing token (needs prelude.lua). Keys of a lock:
--   lock_key   string: the holder's token, PX = the lease
--   fence_key  string: the last fencing token issued for this lock

-- acquire. Reply: { 1, fence } when acquired (or already held by `token`: a re-sent acquire
-- after a reconnect), { 0, ms left on the holder's lease } when busy.
local function lock_acquire(keys, argv)
  -- KEYS: lock_key, fence_key. ARGV: clock (store time in ms injected by tests, '' = Redis
  -- TIME), token (the caller's), ttl_ms (the lease, ms).
  local lock_key, fence_key = keys[1], keys[2]
  -- ttl_arg, the string as sent, for commands (see int_str); ttl_ms, its number, for fences.
  local clock, token, ttl_arg = argv[1], argv[2], argv[3]
  local ttl_ms = tonumber(ttl_arg)
  -- A free lock, the common case, is taken by one command.
  if redis.call('SET', lock_key, token, 'NX', 'PX', ttl_arg) then return { 1, next_fence(fence_key, clock, ttl_ms) } end
  local holder = redis.call('GET', lock_key)
  if holder == token then
    redis.call('PEXPIRE', lock_key, ttl_arg)
    -- Same holder, same fence; a lost counter gets a new, still greater one.
    local fence = tonumber(redis.call('GET', fence_key)) or next_fence(fence_key, clock, ttl_ms)
    return { 1, fence }
  end
  return { 0, math.max(redis.call('PTTL', lock_key), 0) }
end

-- extend. Reply 1 if `token` still holds the lock (lease reset to ttl_ms from now), else 0.
-- Never re-acquires.
local function lock_extend(keys, argv)
  -- KEYS: lock_key. ARGV: token, ttl_ms (the new lease, ms).
  local lock_key = keys[1]
  local token, ttl_ms = argv[1], argv[2]
  if redis.call('GET', lock_key) ~= token then return 0 end
  redis.call('PEXPIRE', lock_key, ttl_ms)
  return 1
end

-- release. Reply 1 if `token` held the lock and it was deleted (also to this call re-sent after
-- a reconnect: see mark_settled), else 0.
local function lock_release(keys, argv)
  -- KEYS: lock_key. ARGV: token, call_id (unique to this call, '' = none).
  local lock_key = keys[1]
  local token, call_id = argv[1], argv[2]
  if redis.call('GET', lock_key) ~= token then
    if settled_before(lock_key, call_id) then return 1 end
    return 0
  end
  redis.call('DEL', lock_key)
  mark_settled(lock_key, call_id)
  return 1
end
