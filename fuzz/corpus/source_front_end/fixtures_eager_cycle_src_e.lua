return { d = require("d") }
