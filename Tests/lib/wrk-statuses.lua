-- Status counting for the wrk scripts of Tests/e2e/operations, Tests/load and Tests/bench.
-- Load it first, with dofile() (wrk has no module path of its own):
--
--     dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "<relative path>/wrk-statuses.lua")
--
-- wrk runs one Lua state per thread plus one for setup() and done(): a count kept in
-- response() lives in its thread's state, and done() can only see it through thread:get().
-- So this keeps the threads in setup(), counts every status per thread in the global table
-- `statuses` (status -> count), and sum_threads() adds the threads' tables up in done().
--
-- Defines setup(), init() and response(). A script that needs more per thread sets
-- init_thread(args) (called from init()) and on_response(status) (after the count), and
-- prints what it wants in its own done(). setup() also gives every thread `thread_index`
-- (1, 2, ...), for scripts that vary their requests per thread.

local threads = {}

function setup(thread)
    thread:set("thread_index", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    if init_thread then init_thread(args) end
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if on_response then on_response(status) end
end

-- sum_threads(name): in done(), the per-thread tables called `name`, summed key by key
function sum_threads(name)
    local total = {}
    for _, thread in ipairs(threads) do
        for key, n in pairs(thread:get(name) or {}) do total[key] = (total[key] or 0) + n end
    end
    return total
end
