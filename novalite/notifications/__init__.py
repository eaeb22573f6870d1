"""novalite notifications."""
