-- wrk script for bench/serve_bench.py: requests for random users at a fixed rate.
-- wrk ... -s serve_load.lua URL -- MODE USERS BATCH RATE SEED
--   MODE: "one" (GET /v1/users/{id}/features) or "many" (POST /v1/features, BATCH users)
--   RATE: requests/s of each wrk thread, on a fixed schedule (open loop: a slow answer does
--         not delay the next request while other connections are free); 0 = as fast as possible
-- Prints one JSON line: counts, errors and latency percentiles in microseconds.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } lf_timespec;
int clock_gettime(int clk_id, lf_timespec *tp);
]]
local ts = ffi.new("lf_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local mode, users, batch, interval, due
local features = '"cart_amount","last_searches","last_event_time","top_brands_30d","purchase_stats_30d"'

function init(args)
  mode, users, batch = args[1], tonumber(args[2]), tonumber(args[3])
  local rate = tonumber(args[4])
  interval = rate > 0 and 1000 / rate or 0
  math.randomseed(tonumber(args[5]) + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end

function delay()
  if interval == 0 then return 0 end
  local t = now_ms()
  due = (due or t) + interval
  return math.max(0, due - interval - t)
end

function request()
  if mode == "one" then
    return wrk.format("GET", "/v1/users/" .. math.random(0, users - 1) .. "/features")
  end
  local ids = {}
  for i = 1, batch do ids[i] = math.random(0, users - 1) end
  local body = '{"user_ids":[' .. table.concat(ids, ",") .. '],"features":[' .. features .. ']}'
  return wrk.format("POST", "/v1/features", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"non_2xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
