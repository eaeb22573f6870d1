"""novalite objects."""
