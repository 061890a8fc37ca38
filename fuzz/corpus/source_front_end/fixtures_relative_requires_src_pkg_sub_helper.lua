local here = (...):match("(.-)[^%.]+$")
local sibling = require(here .. "sibling")

return {
  name = function()
    return "helper and " .. sibling
  end,
}
