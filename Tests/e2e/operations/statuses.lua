-- wrk script for Tests/e2e/operations.sh: counts the responses per status class in
-- response() and prints the totals of all threads in done(), for the shell to parse:
--   statuses 2xx=N 401=N 403=N other4xx=N 5xx=N other=N
--   errors connect=N read=N write=N timeout=N
--   requests=N
-- Env: WRK_METHOD, the request method (default GET). Headers come from wrk -H.
wrk.method = os.getenv("WRK_METHOD") or "GET"

local names = { "c2xx", "c401", "c403", "c4xx", "c5xx", "cother" }
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    c2xx, c401, c403, c4xx, c5xx, cother = 0, 0, 0, 0, 0, 0
end

function response(status, headers, body)
    if status >= 200 and status < 300 then
        c2xx = c2xx + 1
    elseif status == 401 then
        c401 = c401 + 1
    elseif status == 403 then
        c403 = c403 + 1
    elseif status >= 400 and status < 500 then
        c4xx = c4xx + 1
    elseif status >= 500 and status < 600 then
        c5xx = c5xx + 1
    else
        cother = cother + 1
    end
end

function done(summary, latency, requests)
    local total = {}
    for _, name in ipairs(names) do total[name] = 0 end
    for _, thread in ipairs(threads) do
        for _, name in ipairs(names) do total[name] = total[name] + (thread:get(name) or 0) end
    end
    io.write(string.format("statuses 2xx=%d 401=%d 403=%d other4xx=%d 5xx=%d other=%d\n",
        total.c2xx, total.c401, total.c403, total.c4xx, total.c5xx, total.cother))
    local e = summary.errors
    io.write(string.format("errors connect=%d read=%d write=%d timeout=%d\n", e.connect, e.read, e.write, e.timeout))
    io.write(string.format("requests=%d\n", summary.requests))
end
