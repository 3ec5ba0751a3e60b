-- Class "ldap-warm": a few LDAP users with the right password, over and over. Their verdicts
-- are cached for cache.ttl and re-verified against slapd after that; while slapd is down the
-- last success stands in for up to cache.stale_grace. Expect 200 throughout, the outage
-- included (Gatehouse marks those answers "stale credentials" in its log).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "ldap-warm"
normal = 200
local users = { { "alice", "alice-pw" }, { "carol", "carol-pw" }, { "bob", "bob-pw" } }
function next_request(n)
    local u = users[n % #users + 1]
    return "GET", "/v2/" .. u[1] .. "/app/manifests/latest", u[1], u[2]
end
install()
