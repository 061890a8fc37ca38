-- The loader of a module that Luau's path require found in the bundle. A module required
-- again while it is still loading (a cycle) gets a placeholder that refuses every access,
-- as Luau's own require gives; when the module returns a table, the placeholder takes its
-- fields and metatable (`populate`) and is frozen (`lock` and `populate` set metatables
-- raw, past `__metatable`), so every requirer holds the same table.
-- A module that fails leaves its placeholder, as in Luau.
local begin_load, end_load, lock, populate = ...
local error, tostring, select, type, pcall = error, tostring, select, type, pcall
local locked = {
  __index = function(_, key)
    error("Cannot access the exported field '" .. tostring(key) .. "' because it has a cyclic dependency on its requiring module", 0)
  end,
  __newindex = function(_, key)
    error("Cannot set the exported field '" .. tostring(key) .. "' because it has a cyclic dependency on its requiring module", 0)
  end,
  __metatable = "The metatable is locked",
}
local loading = {}
local function finish(ok, ...)
  if not ok then
    local err = ...
    end_load(tostring(err))
    error(err, 0)
  end
  end_load(nil)
  if select("#", ...) > 1 then error("module must return a single value", 0) end
  return (...)
end
return function(chunk, path)
  return function()
    local waiting = loading[path]
    if waiting then
      waiting.provided = true
      return waiting.placeholder
    end
    local state = { placeholder = lock({}, locked), provided = false }
    loading[path] = state
    begin_load(path, "bundle")
    local result = finish(pcall(chunk))
    loading[path] = nil
    if state.provided and type(result) == "table" then return populate(state.placeholder, result) end
    return result
  end
end
