-- wrk script for the serving bench: one fixed request, and a JSON summary at the end.
--   wrk -t1 -cN -dS -s bench/post.lua URL -- METHOD BODY_FILE ["Header: value" ...]
-- BODY_FILE "-" sends no body. done() prints one line of JSON the bench parses.

function init(args)
  wrk.method = args[1]
  if args[2] ~= "-" then
    local file = assert(io.open(args[2], "rb"))
    wrk.body = file:read("*a")
    file:close()
  end
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
