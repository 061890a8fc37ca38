-- Side effect on load: counts how often this module body runs.
CONFIG_LOADS = (CONFIG_LOADS or 0) + 1

return {
  name = "shapes-demo",
  version = "1.0",
}
