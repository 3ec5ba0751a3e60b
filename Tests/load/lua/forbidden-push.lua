-- Class "forbidden-push": the read-only htpasswd user pushes a manifest (PUT, passed by nginx
-- in X-Original-Method) with the right password. Expect 403, always. Any 200 is a wrong answer.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "forbidden-push"
normal = 403
local password = os.getenv("PW_READER")
local paths = { "/v2/team/app/manifests/latest", "/v2/alice/app/manifests/latest", "/v2/reader/app/manifests/v1" }
function next_request(n)
    return "PUT", paths[n % #paths + 1], "reader", password
end
install()
