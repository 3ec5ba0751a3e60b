-- wrk script of Benchmarks/lockout-flood.sh: a flood of wrong passwords for one user from one
-- (trusted, X-Real-IP) address, a different password in every request, so that neither the
-- negative cache nor "the same wrong password counts once" absorbs any of them.
--
--     FLOOD_USER=alice FLOOD_ADDR=203.0.113.10 FLOOD_NONCE=x wrk -t1 -c32 -d20s \
--         -s Benchmarks/lockout/flood.lua http://127.0.0.1:PORT/auth
--
-- Env: FLOOD_USER (alice), FLOOD_ADDR (203.0.113.10), FLOOD_URI (/v2/team/app/manifests/1),
--      FLOOD_NONCE (""; part of every password, so that two runs never repeat a password).
-- done() prints one line:
--     FLOOD requests=N duration_us=N p50_us=N p99_us=N connect=N read=N write=N timeout=N
--           non2xx=N statuses=401:N,200:N,...
-- (statuses counted per thread with Tests/lib/wrk-statuses.lua and summed in done()).

dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "../../Tests/lib/wrk-statuses.lua")

local user = os.getenv("FLOOD_USER") or "alice"
local addr = os.getenv("FLOOD_ADDR") or "203.0.113.10"
local uri = os.getenv("FLOOD_URI") or "/v2/team/app/manifests/1"
local nonce = os.getenv("FLOOD_NONCE") or ""

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local function ch(shift) local k = math.floor(n / shift) % 64 + 1; return alphabet:sub(k, k) end
        out[#out + 1] = ch(262144) .. ch(4096) .. (b and ch(64) or "=") .. (c and ch(1) or "=")
    end
    return table.concat(out)
end

-- per thread (wrk-statuses.lua's init() calls this): the request counter
function init_thread(args)
    counter = 0
end

function request()
    counter = counter + 1
    local password = string.format("flood-%s-%d-%d", nonce, thread_index or 0, counter)
    return wrk.format("GET", nil, {
        ["Authorization"] = "Basic " .. b64(user .. ":" .. password),
        ["X-Real-IP"] = addr,
        ["X-Original-URI"] = uri,
        ["X-Original-Method"] = "GET",
    })
end

function done(summary, latency, requests)
    local e = summary.errors
    local parts = {}
    local statuses = sum_threads("statuses")
    local keys = {}
    for status in pairs(statuses) do keys[#keys + 1] = status end
    table.sort(keys)
    for _, status in ipairs(keys) do parts[#parts + 1] = status .. ":" .. statuses[status] end
    io.write(string.format(
        "FLOOD requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f connect=%d read=%d write=%d timeout=%d non2xx=%d statuses=%s\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.connect, e.read, e.write, e.timeout, e.status, #parts > 0 and table.concat(parts, ",") or "none"))
end
