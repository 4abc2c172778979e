-- Cycles through pre-signed, distinct callbacks; each wrk thread takes its own slice of the file.
local counter = 1
local threads = {}

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   bodies, signatures = {}, {}
   local index = 0
   for line in io.lines(path) do
      if index % nthreads == id - 1 then
         local tab = line:find("\t")
         table.insert(signatures, line:sub(1, tab - 1))
         table.insert(bodies, line:sub(tab + 1))
      end
      index = index + 1
   end
   position = 0
end

function request()
   position = position % #bodies + 1
   return wrk.format("POST", "/twilio/recordings/voice", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signatures[position],
   }, bodies[position])
end
