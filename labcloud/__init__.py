"""labcloud command line: the launcher of a whole stack and operator commands."""
