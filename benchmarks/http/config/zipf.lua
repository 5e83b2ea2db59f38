-- wrk script for the Zipf scenarios: every request asks for /k/<prefix>/<key>, the key drawn
-- from a Zipf distribution (exponent s) over `keys` keys with a fixed seed, so every cache
-- gets the same sequence of keys; the thread stops after `count` responses, so every cache
-- serves the same number of requests. A fresh prefix per run makes every run start cold.
-- Arguments (after `--`): prefix count keys s seed.
--
-- wrk's main thread sleeps for the whole -d; a SIGINT ends that sleep and wrk then reports as
-- usual, with the time actually run. So after the last response the script stops its thread
-- and sends its own process a SIGINT (process-directed, so Linux hands it to the main thread).
local ffi = require("ffi")
ffi.cdef [[
int getpid(void);
int kill(int pid, int sig);
]]
local prefix, count, keys, s, seed
local cdf = {}
local responses = 0

function init(args)
   prefix = args[1] or "p"
   count = tonumber(args[2] or "40000")
   keys = tonumber(args[3] or "100000")
   s = tonumber(args[4] or "0.99")
   seed = tonumber(args[5] or "42")
   local total = 0
   for k = 1, keys do
      total = total + 1 / (k ^ s)
      cdf[k] = total
   end
   for k = 1, keys do
      cdf[k] = cdf[k] / total
   end
   math.randomseed(seed)
end

local function draw()
   local u = math.random()
   local lo, hi = 1, keys
   while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
   end
   return lo
end

function request()
   return wrk.format("GET", "/k/" .. prefix .. "/" .. draw())
end

function response(status, headers, body)
   responses = responses + 1
   if responses == count then
      wrk.thread:stop()
      ffi.C.kill(ffi.C.getpid(), 2)
   end
end
