-- wrk script: POST a different pre-signed body with every request, and count answers other than 201.
--
--   wrk -t1 -c16 -d10s --latency -s tools/bench/post_bodies.lua http://127.0.0.1:PORT/entries -- BODIES_FILE
--
-- BODIES_FILE holds the bodies one after another, each preceded by its length (4 bytes, big-endian). Each body
-- is sent once; if the run outlasts them, it starts over and reports how often it did (the caller refuses such a
-- run: a statement sent twice is a duplicate, which the log answers without registering anything). The counters
-- are globals of the thread's Lua state, so that done() can read them with thread:get().

bodies = {}
next_body = 1
wrapped = 0
not_created = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   local data = file:read("*a")
   file:close()
   local pos = 1
   while pos <= #data do
      local b1, b2, b3, b4 = string.byte(data, pos, pos + 3)
      local length = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      table.insert(bodies, string.sub(data, pos + 4, pos + 3 + length))
      pos = pos + 4 + length
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/cose"
end

function request()
   if next_body > #bodies then
      next_body = 1
      wrapped = wrapped + 1
   end
   local body = bodies[next_body]
   next_body = next_body + 1
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   if status ~= 201 then
      not_created = not_created + 1
   end
end

function done(summary, latency, requests)
   local wraps, refused = 0, 0
   for _, thread in ipairs(threads) do
      wraps = wraps + thread:get("wrapped")
      refused = refused + thread:get("not_created")
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d wrapped=%d not_201=%d errors=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      wraps, refused, e.connect + e.read + e.write + e.timeout))
end
