-- Loaders of the modules Luau's path require finds in the bundle, and cyclic requires.
--
-- Each module gets an export table as its sole `...` (`local M = ... ; M.f = f ; return M`).
-- A module required again while it is still loading (a cycle) gets that table as it stands;
-- while the module it belongs to is itself inside a `require`, the table refuses every
-- access ("Cannot access the exported field ..."), so a cyclic import read at load time
-- fails loudly. When the module finishes: its export table is its value if it returned
-- nothing or that table; if it returned another table and a cyclic requirer holds the
-- export table, that table takes the result's fields and metatable and is frozen, so every
-- requirer holds the same table (as Luau's own require does with its placeholder). A module
-- that fails leaves its export table refusing access, as Luau leaves its placeholder.
-- (`lock`, `unlock` and `populate` set metatables raw, past `__metatable`.)
local begin_load, end_load, lock, unlock, populate = ...
local error, tostring, select, type, pcall, next = error, tostring, select, type, pcall, next
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
-- The modules loading, innermost last.
local stack = {}
local function finish(state, ok, ...)
  stack[#stack] = nil
  if not ok then
    local err = ...
    lock(state.exports, locked)
    end_load(tostring(err))
    error(err, 0)
  end
  end_load(nil)
  if select("#", ...) > 1 then error("module must return a single value", 0) end
  return (...)
end
local function wrap(chunk, path)
  return function()
    local waiting = loading[path]
    if waiting then
      waiting.provided = true
      return waiting.exports
    end
    local state = { exports = {}, provided = false }
    loading[path] = state
    stack[#stack + 1] = state
    begin_load(path, "bundle")
    local result = finish(state, pcall(chunk, state.exports))
    loading[path] = nil
    local exports = state.exports
    if result == nil then
      if state.provided or next(exports) ~= nil then return exports end
      return nil
    end
    if result == exports or not state.provided then return result end
    if type(result) == "table" then return populate(exports, result) end
    lock(exports, locked)
    return result
  end
end
-- Runs a require made while a module loads with that module's export table refusing access.
local function during(call, require, name)
  local state = stack[#stack]
  if state == nil then return call(require, name) end
  lock(state.exports, locked)
  local ok, value = pcall(call, require, name)
  unlock(state.exports)
  if not ok then error(value, 0) end
  return value
end
return wrap, during
