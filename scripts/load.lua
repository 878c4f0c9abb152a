-- wrk script for scripts/load: cycles through precomputed signed Bitbucket
-- deliveries (one "signature<TAB>body" a line, $SLUICE_LOAD_BODIES). Each
-- wrk thread keeps its own slice of the lines, so no two threads send the
-- same body (replay dedupe keys the body) and each request gets its own
-- X-Request-UUID.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
  thread:set("nthreads", tonumber(os.getenv("SLUICE_LOAD_THREADS") or "2"))
end

local items = {}
local next_item = 1
local sent = 0

function init(args)
  local n = 0
  for line in io.lines(os.getenv("SLUICE_LOAD_BODIES")) do
    if n % nthreads == id then
      local tab = line:find("\t", 1, true)
      items[#items + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
    end
    n = n + 1
  end
end

function request()
  local item = items[next_item]
  next_item = next_item % #items + 1
  sent = sent + 1
  return wrk.format("POST", "/hooks/bitbucket", {
    ["Content-Type"] = "application/json",
    ["X-Event-Key"] = "pullrequest:comment_created",
    ["X-Hub-Signature"] = item[1],
    ["X-Request-UUID"] = string.format("%08x-0000-4000-8000-%012x", id, sent),
  }, item[2])
end
