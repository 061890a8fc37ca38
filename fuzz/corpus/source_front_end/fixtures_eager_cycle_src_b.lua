-- b needs c while it loads
local c = require("c")
return { name = "b", c = c }
