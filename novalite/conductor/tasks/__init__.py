"""Conductor tasks: one class per operation, ``execute()`` then ``rollback()`` of what ran."""
