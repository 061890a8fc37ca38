local pkg = require("pkg")
print(pkg.describe())
print(require("pkg.init") ~= pkg)
