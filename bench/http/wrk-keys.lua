-- wrk script of the ratelock bench: every request carries an x-api-key header, cycling through
-- `k0`..`k<n-1>` (n from the command line: `-- <n>`). Requests are built once in init(), so the
-- per-request Lua cost is a table lookup whatever n is. done() prints one JSON line for the driver.

local requests = {}
local count = 1
local i = 0

function init(args)
  count = tonumber(args[1]) or 1
  for k = 0, count - 1 do
    requests[k] = wrk.format("GET", "/", { ["x-api-key"] = "k" .. k })
  end
end

function request()
  local r = requests[i]
  i = (i + 1) % count
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"non2xx":%d,"errors":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
