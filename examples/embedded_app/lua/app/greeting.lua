return {
  text = function()
    return "hello from the bundle"
  end,
}
