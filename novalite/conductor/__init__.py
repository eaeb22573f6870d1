"""novalite conductor."""
