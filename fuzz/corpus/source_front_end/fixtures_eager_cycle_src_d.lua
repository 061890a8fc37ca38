return { e = require("e") }
