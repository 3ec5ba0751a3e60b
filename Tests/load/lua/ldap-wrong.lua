-- Class "ldap-wrong": LDAP users (alice, carol) with wrong passwords, mostly a few repeated
-- ones (negative cache, 10 s), every 50th new (a real failed bind). Expect 401; while slapd is
-- down a new wrong password cannot be checked: 503, i.e. 500 from nginx. Any 200 is a wrong
-- answer (stale_grace must never let a wrong password through).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "ldap-wrong"
normal = 401
next_request = wrong_passwords({ "alice", "carol" })
install()
