-- bare.lua - wrk script for bench/bare, the yardstick: GET / and the common
-- report line (bench/report.lua).
--   wrk -t2 -c64 -d20s -s bench/bare.lua http://127.0.0.1:PORT
bench_scenario = os.getenv("BENCH_SCENARIO") or "bare"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

wrk.method = "GET"
wrk.path = "/"
