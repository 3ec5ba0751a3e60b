-- One machine-readable line at the end of a wrk run, for the benchmarks (Benchmarks/hot-path.sh,
-- Tests/bench/fast-path-bench.sh): requests, duration, p50/p99 latency and every error count.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect, e.read, e.write, e.timeout))
end
