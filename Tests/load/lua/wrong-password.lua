-- Class "wrong-password": htpasswd users with wrong passwords (mostly a few repeated ones,
-- remembered by the negative cache; every 50th one new, so bcrypt runs). Expect 401, always:
-- htpasswd is asked first and knows these users, so the directory's outage cannot matter.
-- Any 200 is a wrong answer.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
class = "wrong-password"
normal = 401
next_request = wrong_passwords({ "reader", "pusher" })
install()
