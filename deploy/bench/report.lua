-- wrk script for deploy/bench/run.sh: prints one machine-readable RESULT line at the end,
-- and, when WRK_DELAY_MS is set (> 0), paces each connection: it waits that many
-- milliseconds after each response before sending its next request, so C connections
-- offer at most C * 1000 / WRK_DELAY_MS requests per second (a fixed offered load).
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0") or 0
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d bytes=%d duration_us=%d p50_us=%d p99_us=%d errors=%d connect_errors=%d timeouts=%d non2xx=%d\n",
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status,
    e.connect, e.timeout, e.status))
end
