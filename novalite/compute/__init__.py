"""novalite compute."""
