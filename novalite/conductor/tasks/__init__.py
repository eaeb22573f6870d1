"""novalite conductor/tasks."""
