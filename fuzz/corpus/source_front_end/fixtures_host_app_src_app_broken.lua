local util = require("app.util")
error("broken on purpose at load time")
