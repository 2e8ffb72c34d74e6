-- tokens.lua - wrk script of the "tokens" scenario: GET /auth/cod/token with
-- the identities of bench/gen_patients, most of them asked again and again.
--
--   wrk -t2 -c64 -d20s -s bench/tokens.lua http://127.0.0.1:PORT -- IDENTITIES
--
-- IDENTITIES (or the environment's BENCH_IDENTITIES) is the file that
-- `gen_patients -i` writes: one "ENP BIRTHDAY" line per patient, every line
-- 28 bytes. BENCH_HOT (default 10000) is the size of the hot set, the first
-- lines of the file; BENCH_HOT_PCT (default 90) the percentage of requests
-- that pick from it ("repeat identities"). The rest pick uniformly from the
-- whole file ("new identities"), read straight from it by offset, so a
-- thread starts at once and holds only the hot set.
bench_scenario = os.getenv("BENCH_SCENARIO") or "tokens"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local LINE = 28 -- "9900000000000017 1985-03-14\n"

local file, count
local hot = {}
local hot_pct

local function path_of(line)
   local enp, birthday = line:match("^(%d+) (%d%d%d%d%-%d%d%-%d%d)")
   if not enp then
      error("tokens.lua: not an identity line: " .. tostring(line))
   end
   return "/auth/cod/token?n_pol=" .. enp .. "&birthday=" .. birthday
end

function init(args)
   local path = args[1] or os.getenv("BENCH_IDENTITIES")
   if not path then
      error("tokens.lua: name the identities file: wrk ... -- FILE, or BENCH_IDENTITIES=FILE")
   end
   file = assert(io.open(path, "rb"))
   local size = file:seek("end")
   if size == 0 or size % LINE ~= 0 then
      error("tokens.lua: " .. path .. " is not a gen_patients -i file (lines of " .. LINE .. " bytes)")
   end
   count = size / LINE
   file:setvbuf("no")
   local nhot = math.min(tonumber(os.getenv("BENCH_HOT") or "10000"), count)
   hot_pct = tonumber(os.getenv("BENCH_HOT_PCT") or "90")
   file:seek("set", 0)
   for i = 1, nhot do
      hot[i] = wrk.format("GET", path_of(file:read(LINE)))
   end
   -- Each thread its own sequence, the same from run to run.
   math.randomseed(7919 * thread_id + 1)
end

function request()
   if math.random(100) <= hot_pct then
      return hot[math.random(#hot)]
   end
   file:seek("set", (math.random(count) - 1) * LINE)
   return wrk.format("GET", path_of(file:read(LINE)))
end
