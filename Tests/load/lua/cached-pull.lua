-- Class "cached-pull": htpasswd users with the right password pull (GET a manifest or a blob).
-- After the first request their verdict comes from Gatehouse's credential cache. Expect 200,
-- also while the directory is down (htpasswd is asked first and knows them).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "cached-pull"
normal = 200
local users = { { "reader", os.getenv("PW_READER") }, { "pusher", os.getenv("PW_PUSHER") } }
local paths = { "/v2/team/app/manifests/latest", "/v2/alice/app/manifests/latest",
    "/v2/team/app/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }
function next_request(n)
    local u = users[n % #users + 1]
    return "GET", paths[n % #paths + 1], u[1], u[2]
end
install()
