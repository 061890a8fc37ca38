print(require("config").source)
