-- Class "ldap-forbidden": carol (an LDAP user in no group) pushes a manifest with the right
-- password. Expect 403 throughout, the outage included (cached or stale identity, same rules).
-- Any 200 is a wrong answer.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "ldap-forbidden"
normal = 403
local paths = { "/v2/team/app/manifests/latest", "/v2/alice/app/manifests/latest" }
function next_request(n)
    return "PUT", paths[n % #paths + 1], "carol", "carol-pw"
end
install()
