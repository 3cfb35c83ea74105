"""Teachers: their courses, members, the course's instances and defaults."""
