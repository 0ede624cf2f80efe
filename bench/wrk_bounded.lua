-- wrk has a duration (-d) but no request count: this script adds one, then prints a
-- one-line JSON summary that bench/load.py reads.
--
-- BENCH_MAX_REQUESTS: stop once the run has sent about this many requests (0: no cap;
-- a thread may overshoot by its open connections).
-- BENCH_THREADS: the -t value, to split the count (each thread runs its own Lua state).

local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local per_thread = math.ceil(max_requests / tonumber(os.getenv("BENCH_THREADS") or "1"))
local sent = 0

function request()
  sent = sent + 1
  if per_thread > 0 and sent > per_thread then
    wrk.thread:stop()
  end
  return wrk.request()
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
