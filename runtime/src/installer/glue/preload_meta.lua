-- The rest of the `package.preload` metatable, written in Lua so that module bodies run as
-- plain Lua calls and their errors pass through.
local function chain(preload, name)
  if type(previous) == "function" then return previous(preload, name) end
  if type(previous) == "table" then return previous[name] end
  return nil
end

local function group(members)
  return setmetatable({}, {
    __index = function(t, field)
      local module = members[field]
      if module == nil then return nil end
      local value = require(module)
      rawset(t, field, value)
      return value
    end,
  })
end

-- A loader for `name`, and whether it must not be cached.
local function make_loader(name)
  local kind, handle, path = resolve(name)
  if kind == "bundle" then
    -- Not a tail call: a "(...tail calls...)" line in tracebacks would say nothing useful.
    return function() return (run_bundled(name, handle, path)) end
  elseif kind == "native" then
    return function() return run_native(name, handle) end
  elseif kind == "group" then
    return function() return group(group_members(handle)) end
  elseif kind == "denied" then
    return function() error(handle, 0) end, true
  end
  return nil
end

-- The loaders kept in `package.preload`, by name, so that a reload can take back exactly
-- these (and not entries the host set).
local made = {}

local meta = {}
meta.__index = function(preload, name)
  if type(name) ~= "string" then return chain(preload, name) end
  local loader, transient = make_loader(name)
  if loader == nil then return chain(preload, name) end
  if not transient then
    rawset(preload, name, loader)
    made[name] = loader
  end
  return loader
end
-- pairs(package.preload) (Lua 5.2 and later): the entries set so far, then every other
-- requirable name.
meta.__pairs = function(preload)
  local names, i, key, raw = nil, 0, nil, true
  return function()
    if raw then
      local k, v = next(preload, key)
      if k ~= nil then key = k return k, v end
      raw, names = false, list_names()
    end
    while true do
      i = i + 1
      local name = names[i]
      if name == nil then return nil end
      if rawget(preload, name) == nil then return name, preload[name] end
    end
  end, preload, nil
end
-- Luau iterates tables with `for k, v in t` and asks `__iter`.
if _VERSION:sub(1, 4) == "Luau" then meta.__iter = meta.__pairs end

-- Takes back the loaders kept so far: after a reload, names are looked up in the new bundle.
local function forget(preload)
  for name, loader in next, made do
    if rawget(preload, name) == loader then rawset(preload, name, nil) end
  end
  made = {}
end
return meta, forget
