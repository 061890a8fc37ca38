local Square = {}
Square.__index = Square

function Square.new(side)
  return setmetatable({ name = "square", side = side }, Square)
end

function Square:area()
  return self.side * self.side
end

return Square
