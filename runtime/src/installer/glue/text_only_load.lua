-- Replaces `load`, `loadfile` and `dofile` (and LuaJIT's `loadstring`) with versions that
-- accept text chunks only.
local raw_load, raw_loadfile, select, assert = load, loadfile, select, assert
load = function(chunk, chunkname, mode, ...)
  if select('#', ...) > 0 then return raw_load(chunk, chunkname, "t", ...) end
  return raw_load(chunk, chunkname, "t")
end
if loadstring then
  loadstring = function(chunk, chunkname) return raw_load(chunk, chunkname, "t") end
end
loadfile = function(filename, mode, ...)
  if select('#', ...) > 0 then return raw_loadfile(filename, "t", ...) end
  return raw_loadfile(filename, "t")
end
dofile = function(filename)
  local chunk = assert(raw_loadfile(filename, "t"))
  return chunk()
end
-- `require`'s own file searcher loads whatever it finds, bytecode too: this one loads text
-- only, with Lua's search and messages.
local package = package
local searchers = package and (package.searchers or package.loaders)
if searchers and searchers[2] and package.searchpath then
  local searchpath, format, error = package.searchpath, string.format, error
  searchers[2] = function(name)
    local filename, err = searchpath(name, package.path)
    if not filename then return err end
    local chunk, message = raw_loadfile(filename, "t")
    if chunk then return chunk, filename end
    error(format("error loading module '%s' from file '%s':\n\t%s", name, filename, message), 0)
  end
end
