local json = require("json")

local missing = require("app.mising")
return { json = json, missing = missing }
