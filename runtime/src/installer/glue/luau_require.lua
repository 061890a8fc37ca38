-- Luau has no `package` library: install gives it `package.loaded` and `package.preload`
-- and this `require`, which follows Lua 5.x's (a loaded value is returned as is; a loader
-- from `package.preload` is called with the name and its result stored, `true` for none).
-- Path-style names (`@alias/x`, `./x`, `../x`) that no loader claims go on to the state's
-- previous `require`, Luau's own, unless the installation is hermetic.
local package, previous, hermetic, explain = ...
local loaded, preload = package.loaded, package.preload
local type, error, sub = type, error, string.sub
local function is_path(name)
  return sub(name, 1, 1) == "@" or sub(name, 1, 2) == "./" or sub(name, 1, 3) == "../"
end
require = function(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
  end
  local value = loaded[name]
  if value then return value end
  local loader = preload[name]
  if loader == nil then
    if not hermetic and type(previous) == "function" and is_path(name) then return previous(name) end
    error("module '" .. name .. "' not found:\n\tno field package.preload['" .. name .. "']\n\t" .. explain(name), 2)
  end
  local result = loader(name, ":preload:")
  if result ~= nil then loaded[name] = result elseif loaded[name] == nil then loaded[name] = true end
  return loaded[name], ":preload:"
end
