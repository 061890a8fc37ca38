-- A package: `require "app.shapes"` finds this file through ?/init.lua.
local circle = require("app.shapes.circle")
local square = require("app.shapes.square")

return {
  circle = circle.new,
  square = square.new,
}
