"""novalite cmd."""
