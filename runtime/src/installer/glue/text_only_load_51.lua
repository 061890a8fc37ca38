-- Lua 5.1 has no load mode: binary chunks are refused by their first byte.
local raw_load, raw_loadstring, open, type, error, assert, tostring =
  load, loadstring, io and io.open, type, error, assert, tostring
local BINARY = "attempt to load a binary chunk (mode is 't')"
loadstring = function(chunk, chunkname)
  if type(chunk) == "string" and chunk:byte(1) == 27 then return nil, BINARY end
  return raw_loadstring(chunk, chunkname)
end
load = function(reader, chunkname)
  if type(reader) == "string" then return loadstring(reader, chunkname) end
  local first = true
  return raw_load(function()
    local piece = reader()
    if first and piece and piece ~= "" then
      first = false
      if piece:byte(1) == 27 then error(BINARY, 0) end
    end
    return piece
  end, chunkname)
end
local stdin = io and io.stdin
-- Lua 5.1's own messages and chunk names: "cannot open NAME: reason", "=stdin" for no name;
-- a first line starting with '#' is skipped (kept as a comment, so line numbers stay).
loadfile = function(filename)
  local text
  if filename == nil then
    if not stdin then return nil, "cannot read stdin" end
    text = stdin:read("*a") or ""
  else
    if not open then return nil, "cannot open " .. tostring(filename) end
    local file, err = open(filename, "rb")
    if not file then return nil, "cannot open " .. err end
    local read_error
    text, read_error = file:read("*a")
    file:close()
    if not text then return nil, "cannot read " .. filename .. ": " .. tostring(read_error) end
  end
  if text:byte(1) == 35 then text = "--" .. text end
  return loadstring(text, filename == nil and "=stdin" or "@" .. filename)
end
dofile = function(filename)
  local chunk = assert(loadfile(filename))
  return chunk()
end
-- `require`'s own file searcher loads whatever it finds, bytecode too: this one loads text
-- only, with Lua 5.1's search and messages.
local loaders = package and package.loaders
if loaders and loaders[2] and open then
  local format, gsub, gmatch, concat = string.format, string.gsub, string.gmatch, table.concat
  loaders[2] = function(name)
    local path = package.path
    if type(path) ~= "string" then error("'package.path' must be a string", 0) end
    local tried, base = {}, (gsub(name, "%.", "/"))
    for template in gmatch(path, "[^;]+") do
      local filename = (gsub(template, "%?", base))
      local file = open(filename, "r")
      if file then
        file:close()
        local chunk, message = loadfile(filename)
        if chunk then return chunk end
        error(format("error loading module '%s' from file '%s':\n\t%s", name, filename, message), 0)
      end
      tried[#tried + 1] = "\n\tno file '" .. filename .. "'"
    end
    return concat(tried)
  end
end
