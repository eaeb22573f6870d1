"""novalite cli."""
