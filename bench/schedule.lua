-- schedule.lua - wrk script of the "schedule" scenario: a portal reads
-- doctors' schedules, GET /api/v2/lpu/{lpu}/doctor/{resource}/schedule/{from}/{to}
-- without a token, over many resources and date ranges.
--
--   wrk -t2 -c64 -d20s -s bench/schedule.lua http://127.0.0.1:PORT -- RESOURCES DAYS
--
-- RESOURCES: one "LPU_GUID RESOURCE_GUID" line per resource; DAYS: the days
-- a portal may ask, today first, one YYYY-MM-DD a line (scripts/bench writes
-- both). The ranges: 60% start today and span 1 to 7 days (the week view),
-- 40% one to three days anywhere in the horizon. Each thread builds
-- BENCH_REQUESTS (default 20000) requests at start and picks among them, so
-- that wrk's own cost per request stays that of the bare run.
bench_scenario = os.getenv("BENCH_SCENARIO") or "schedule"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local reqs = {}

function init(args)
   if not args[1] or not args[2] then
      error("schedule.lua: wrk ... -- RESOURCES DAYS")
   end
   local res, days = lines(args[1]), lines(args[2])
   if #res == 0 or #days < 8 then
      error("schedule.lua: no resources, or fewer than 8 days")
   end
   math.randomseed(104729 * thread_id + 3)
   local n = tonumber(os.getenv("BENCH_REQUESTS") or "20000")
   for i = 1, n do
      local lpu, r = res[math.random(#res)]:match("^(%S+) (%S+)$")
      local from, span
      if math.random(100) <= 60 then
         from, span = 1, math.random(7)
      else
         span = math.random(3)
         from = math.random(#days - span + 1)
      end
      local to = math.min(from + span - 1, #days)
      reqs[i] = wrk.format("GET", "/api/v2/lpu/" .. lpu .. "/doctor/" .. r .. "/schedule/"
                           .. days[from] .. "/" .. days[to])
   end
end

function request()
   return reqs[math.random(#reqs)]
end
