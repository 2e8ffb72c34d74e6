-- booking.lua - wrk script of the "booking" and "booked" scenarios:
-- POST /api/v2/iemk/doctors/entry with RPGU tokens.
--
--   wrk ... -s bench/booking.lua URL -- TOKENS RESOURCES SLOTS BOOKED
--
-- TOKENS: one RPGU token per line, of patients who all have a card in the
-- bench LPU. RESOURCES: one doctor_id (LPU GUID + resource GUID) per line,
-- each resource of its own speciality. SLOTS: "YYYY-MM-DD HH:MM" per line,
-- the cells every resource has. BOOKED: "DOCTOR_ID DAY TIME HOLDER" per
-- line, cells booked by the patient on line HOLDER (0-based) of TOKENS.
--
-- booking (BENCH_SCENARIO "booking" or "warmup-booking"): every request
-- books a cell no request has booked, for a patient who has no booking of
-- that speciality: request g of the run (counted across threads, thread t
-- taking g = t-1, t-1+T, ...) books for patient g mod P the slot of the same
-- number of resource floor(g/P) (P must not exceed the slots). Requests in
-- flight together are different patients, as on a real portal (one patient
-- booking 64 cells at once would queue on its own card's row). The warm-up
-- counts g from 0 and the measured run from BENCH_BOOKING_BASE (default
-- 40 resources' worth), so neither books the other's cells; every answer
-- should be 200.
--
-- booked: every request asks for a cell of BOOKED for a patient other than
-- its holder: every answer should be 4009, and (after the warm-up has put
-- each cell's marker in Redis) none should need PostgreSQL. Each thread
-- builds BENCH_REQUESTS (default 20000) such requests at start and picks
-- among them, as schedule.lua does, so that wrk's own cost per request stays
-- that of the bare run it is compared with.
bench_scenario = os.getenv("BENCH_SCENARIO") or "booking"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local tokens, resources, slots, booked, reqs = {}, {}, {}, {}, {}
local mode, nthreads, g

local function entry(token, doctor, day, time)
   return wrk.format("POST", "/api/v2/iemk/doctors/entry",
      {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
      '{"lpu_code":"9800001","doctor_id":"' .. doctor .. '","day":"' .. day ..
      '","time":"' .. time .. '"}')
end

function init(args)
   if not args[4] then
      error("booking.lua: wrk ... -- TOKENS RESOURCES SLOTS BOOKED")
   end
   tokens, resources, slots = lines(args[1]), lines(args[2]), lines(args[3])
   mode = bench_scenario:match("booked") and "booked" or "booking"
   nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
   if mode == "booked" then
      for _, l in ipairs(lines(args[4])) do
         local doctor, day, time, holder = l:match("^(%S+) (%S+) (%S+) (%d+)$")
         booked[#booked + 1] = {doctor, day, time, tonumber(holder)}
      end
      math.randomseed(7907 * thread_id + 11)
      for i = 1, tonumber(os.getenv("BENCH_REQUESTS") or "20000") do
         local b = booked[math.random(#booked)]
         local p = (b[4] + math.random(#tokens - 1)) % #tokens
         reqs[i] = entry(tokens[p + 1], b[1], b[2], b[3])
      end
   else
      local base = bench_scenario:match("^warmup") and 0
                   or tonumber(os.getenv("BENCH_BOOKING_BASE") or tostring(40 * #tokens))
      g = base + thread_id - 1
   end
end

-- booked: every answer should be 400 with Message_code 4009. wrk counts
-- them all as errors (status >= 400); scripts/bench checks the codes on the
-- gateway's /metrics instead (mipgw_errors_total), so that no response()
-- hook costs wrk more than it costs in the bare run.

function request()
   if mode == "booked" then
      return reqs[math.random(#reqs)]
   end
   local p = g % #tokens
   local r = math.floor(g / #tokens)
   g = g + nthreads
   if r >= #resources or #tokens > #slots then
      error("booking.lua: out of free cells; load more resources or slots")
   end
   local day, time = slots[p + 1]:match("^(%S+) (%S+)$")
   return entry(tokens[p + 1], resources[r + 1], day, time)
end
