local x = 1


local a = require("a")
return { name = "c", a = a }
