-- report.lua - what every bench scenario's wrk script shares: each thread's
-- number, the data files' lines, and one machine-readable line at the end.
-- Loaded by the scenario scripts (see bench/tokens.lua) with dofile, from the
-- directory of the script itself, so wrk may be started from anywhere.
--
-- The line scripts/bench reads, one per wrk run:
--   BENCH scenario=NAME requests=N duration_s=S rps=R p50_us=U p90_us=U
--         p99_us=U max_us=U non2xx=N socket_errors=N
-- Latencies are wrk's, in microseconds.
--
-- wrk runs one Lua state per thread plus one for setup() and done(); setup()
-- numbers the threads (the pattern of wrk's scripts/counter.lua).

local threads = {}

-- The scenario's name, set by the script that loads this file.
bench_scenario = bench_scenario or "unnamed"

-- The non-empty lines of a file, for the scenarios' data.
function lines(path)
   local t = {}
   for l in assert(io.open(path, "r")):lines() do
      if l ~= "" then t[#t + 1] = l end
   end
   return t
end

-- Each thread's number, set by setup().
thread_id = 0

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("thread_id", #threads)
end

-- No response() hook: defining one makes wrk copy every answer's headers and
-- body into Lua, which costs wrk more CPU the bigger the answer, and so
-- measures wrk. wrk counts answers with a status of 400 or more itself
-- (summary.errors.status); the gateway answers no 1xx or 3xx. A scenario
-- whose answers are all errors (booked) checks them another way.
function done(summary, latency, requests)
   local e = summary.errors
   local bad = e.status
   local duration_s = summary.duration / 1e6
   io.write(string.format(
      "BENCH scenario=%s requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
      bench_scenario, summary.requests, duration_s, summary.requests / duration_s,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      bad, e.connect + e.read + e.write + e.timeout))
end
