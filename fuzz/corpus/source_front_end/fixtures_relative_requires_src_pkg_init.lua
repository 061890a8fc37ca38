-- Module-relative requires: the package finds its parts from its own name.
local base = (...):gsub("%.init$", "")
local helper = require(base .. ".sub.helper")

return {
  describe = function()
    return base .. " uses " .. helper.name()
  end,
}
