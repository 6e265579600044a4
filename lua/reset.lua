-- reset: deletes its keys. UNLINK frees large logs off the main thread.
-- Reply: the number of keys that existed.
local function reset(keys)
  -- KEYS: the keys to delete (limit logs, locks, records; one hash tag per call on Cluster). No ARGV.
  local deleted = 0
  for i = 1, #keys do
    deleted = deleted + redis.call('UNLINK', keys[i])
  end
  return deleted
end
