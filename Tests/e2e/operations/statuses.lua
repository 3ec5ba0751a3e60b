-- wrk script for Tests/e2e/operations.sh: counts the responses per status class and prints the
-- totals of all threads in done(), for the shell to parse:
--   statuses 2xx=N 401=N 403=N other4xx=N 5xx=N other=N
--   errors connect=N read=N write=N timeout=N
--   requests=N
-- Env: WRK_METHOD, the request method (default GET). Headers come from wrk -H.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "../../lib/wrk-statuses.lua")
wrk.method = os.getenv("WRK_METHOD") or "GET"

function done(summary, latency, requests)
    local c = { c2xx = 0, c401 = 0, c403 = 0, c4xx = 0, c5xx = 0, cother = 0 }
    for status, n in pairs(sum_threads("statuses")) do
        local name = "cother"
        if status >= 200 and status < 300 then
            name = "c2xx"
        elseif status == 401 then
            name = "c401"
        elseif status == 403 then
            name = "c403"
        elseif status >= 400 and status < 500 then
            name = "c4xx"
        elseif status >= 500 and status < 600 then
            name = "c5xx"
        end
        c[name] = c[name] + n
    end
    io.write(string.format("statuses 2xx=%d 401=%d 403=%d other4xx=%d 5xx=%d other=%d\n",
        c.c2xx, c.c401, c.c403, c.c4xx, c.c5xx, c.cother))
    local e = summary.errors
    io.write(string.format("errors connect=%d read=%d write=%d timeout=%d\n", e.connect, e.read, e.write, e.timeout))
    io.write(string.format("requests=%d\n", summary.requests))
end
