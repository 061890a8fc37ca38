-- A module that requires itself while it loads.
local me = require("self")
return me
