-- Gatehouse load test: what every per-class wrk script shares.
--
-- A class script sets `class`, `normal` (the status this class gets when nothing is wrong)
-- and `next_request(n)` (returns method, path, user, password for its n-th request), then
-- calls `install()`. The per-status counts, the per-thread state and thread_index come from
-- Tests/lib/wrk-statuses.lua (shared with the other wrk scripts); the buckets below are per
-- thread too, and done() collects them the same way.
--
-- done() prints one line per figure, each starting with "LOAD class=<class>":
--   status=<code> count=<n>                     every status seen
--   bucket=<code>@<deciseconds> count=<n>       every status other than `normal`, per 100 ms
--                                                (CLOCK_REALTIME, comparable with `date +%s.%N`)
--   errors connect=.. read=.. write=.. timeout=..  wrk's socket errors and timeouts
--   requests=<n> seconds=<s> p50_ms=.. p99_ms=.. max_ms=..
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "../../lib/wrk-statuses.lua")
local ffi = require("ffi")
local bit = require("bit")

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } gatehouse_load_timespec;
int clock_gettime(int clock_id, gatehouse_load_timespec *tp);
]]
local timespec = ffi.new("gatehouse_load_timespec")

-- Wall-clock tenths of a second since the epoch.
function deciseconds()
    ffi.C.clock_gettime(0, timespec) -- CLOCK_REALTIME
    return tonumber(timespec.tv_sec) * 10 + math.floor(tonumber(timespec.tv_nsec) / 100000000)
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function base64(text)
    local out = {}
    for i = 1, #text, 3 do
        local a, b, c = text:byte(i, i + 2)
        local n = bit.bor(bit.lshift(a, 16), bit.lshift(b or 0, 8), c or 0)
        local chars = {}
        for k = 3, 0, -1 do
            local index = bit.band(bit.rshift(n, 6 * k), 63) + 1
            chars[#chars + 1] = alphabet:sub(index, index)
        end
        if not b then chars[3], chars[4] = "=", "=" elseif not c then chars[4] = "=" end
        out[#out + 1] = table.concat(chars)
    end
    return table.concat(out)
end

-- How many wrong passwords the wrong-password classes repeat; every `unique_every`-th
-- request uses a password never seen before instead (a real hash or LDAP bind each time).
wrong_pool = 8
unique_every = 50

function wrong_password(n)
    if n % unique_every == 0 then return string.format("wrong-t%d-n%d", thread_index or 0, n) end
    return "wrong-" .. (n % wrong_pool)
end

-- wrong_passwords(users): next_request for the wrong-password classes: GET a manifest as each
-- of `users` in turn, with wrong_password(n)
function wrong_passwords(users)
    return function(n)
        return "GET", "/v2/team/app/manifests/latest", users[n % #users + 1], wrong_password(n)
    end
end

function install()
    function init_thread(args)
        counter = 0
        buckets = {}
    end

    function request()
        counter = counter + 1
        local method, path, user, password = next_request(counter)
        return wrk.format(method, path, { ["Authorization"] = "Basic " .. base64(user .. ":" .. password) })
    end

    function on_response(status)
        if status ~= normal then
            local bucket = status .. "@" .. deciseconds()
            buckets[bucket] = (buckets[bucket] or 0) + 1
        end
    end

    function done(summary, latency, requests)
        local all_statuses, all_buckets = sum_threads("statuses"), sum_threads("buckets")
        local prefix = "LOAD class=" .. class .. " "
        for key, n in pairs(all_statuses) do print(prefix .. "status=" .. key .. " count=" .. n) end
        for key, n in pairs(all_buckets) do print(prefix .. "bucket=" .. key .. " count=" .. n) end
        local e = summary.errors
        print(prefix .. string.format("errors connect=%d read=%d write=%d timeout=%d", e.connect, e.read, e.write, e.timeout))
        print(prefix .. string.format("requests=%d seconds=%.2f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
            summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
    end
end

