local b = require("b")
return { name = "a", b = b }
