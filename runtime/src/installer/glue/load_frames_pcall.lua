-- How a load is timed before Lua 5.4: the body runs under `pcall` and an error is raised
-- again after it is recorded (its message keeps the original file and line).
local pcall = pcall
local function finish(ok, ...)
  if ok then end_load(nil) return ... end
  local err = ...
  end_load(tostring(err))
  error(err, 0)
end
local function run_bundled(name, handle, path)
  begin_load(name, "bundle")
  local chunk, err = materialise(handle, name)
  if chunk == nil then end_load(err) error(err, 0) end
  return finish(pcall(chunk, name, path))
end
local function run_native(name, handle)
  begin_load(name, "native")
  local ok, value = init_native(handle)
  if not ok then
    end_load(value)
    -- Lua 5.1's require leaves a sentinel in package.loaded when a loader fails, which would
    -- turn the next require into "loop or previous error"; a native init may be retried.
    if package and package.loaded then package.loaded[name] = nil end
    error(value, 0)
  end
  end_load(nil)
  return value
end
