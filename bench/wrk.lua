-- bench.http's wrk script: the paths of a file (args[1]), from line args[2] on, split
-- between args[3] threads; one BENCH_JSON line of figures at the end.
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = (tonumber(args[2]) + math.floor(#paths * id / tonumber(args[3]))) % #paths
end
function request()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format('\nBENCH_JSON {"requests":%d,"us":%d,"errors":%d,"p50":%d,"p99":%d}\n',
    s.requests, s.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
