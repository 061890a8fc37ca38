-- The demo application: exercises nested modules, init.lua packages, eager and deferred
-- requires, a module with side effects and a module that returns nothing.
local config = require("app.config")
local util = require "app.util"
local shapes = require('app.shapes')
local silent = require [[app.silent]]

local main = {}

function main.report(items)
  -- Deferred: app.report is loaded only when a report is asked for.
  local report = require("app.report")
  return report.render(items)
end

print(config.name .. " " .. config.version)
print("config loads: " .. CONFIG_LOADS)
print("silent module value: " .. tostring(silent) .. " (" .. tostring(package.loaded["app.silent"]) .. ")")
print("report loaded before use: " .. tostring(package.loaded["app.report"] ~= nil))

local items = {}
for _, shape in ipairs({ shapes.circle(1), shapes.square(2), shapes.circle(0.5) }) do
  items[#items + 1] = { name = shape.name, area = util.round(shape:area(), 2) }
end
print(main.report(items))
print("report loaded after use: " .. tostring(package.loaded["app.report"] ~= nil))
print("total area: " .. util.round(util.sum(items, "area"), 2))
print("same config table: " .. tostring(require("app.config") == config))
print("config loads after second require: " .. CONFIG_LOADS)
print("args: " .. table.concat(arg or {}, ","))

return main
