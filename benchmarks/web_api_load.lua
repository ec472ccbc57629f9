-- wrk's script for benchmarks/web_api.py: POST /api/v1/notifications/sms with a new Idempotency-Key
-- and a mobile number not used before (up to a million requests); at the end one JSON line with the figures.
-- Settings come from the environment: WRK_SECRET, WRK_CAMPAIGN, and WRK_RATE (requests/s; 0 or unset: each
-- connection sends its next request as soon as it has its answer).
local secret = os.getenv("WRK_SECRET")
local campaign = os.getenv("WRK_CAMPAIGN")
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local counter = 0
prefix = ""  -- set per thread by setup() (a global: thread:set writes globals)

function setup(thread)
  thread:set("prefix", string.format("%x%x", os.time(), math.random(0, 0xffffff)))
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"campaign_id":"%s","phone_number":"+84905%06d","personalisation":{},"reference":"bench-%d"}',
    campaign, counter % 1000000, counter)
  local headers = {
    ["Authorization"] = "Bearer " .. secret,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }
  return wrk.format("POST", "/api/v1/notifications/sms", headers, body)
end

if rate > 0 then
  -- A fixed schedule: request k is due at start + k/rate, whichever connection is free then, so the offered
  -- load stays at the rate while the answers are fast enough (a late answer delays only its connection).
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
    int clock_gettime(int clock, wrk_timespec *ts);
  ]]
  local ts = ffi.new("wrk_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local start, slots = nil, 0

  function delay()
    local now = now_ms()
    start = start or now
    slots = slots + 1
    return math.max(0, math.floor(start + slots * 1000 / rate - now))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
