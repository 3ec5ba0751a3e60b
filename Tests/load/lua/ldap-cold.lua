-- Class "ldap-cold": LDAP users with the right password, a different user each request
-- (load0001 ... loadNNNN in turn, password "pw-<user>"). The cycle is far longer than the
-- credential cache (max_entries), so every verification is a search + bind + group search
-- against slapd. Expect 200; while slapd is down 503 from Gatehouse, i.e. 500 from nginx.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "ldap-cold"
normal = 200
local count = tonumber(os.getenv("COLD_USERS") or "2000")
local offset = tonumber(os.getenv("COLD_OFFSET") or "0") -- the warm-up starts elsewhere in the cycle
function next_request(n)
    local user = string.format("load%04d", (offset + (thread_index - 1) * 997 + n) % count + 1)
    return "GET", "/v2/team/app/manifests/latest", user, "pw-" .. user
end
install()
