"""novalite api."""
