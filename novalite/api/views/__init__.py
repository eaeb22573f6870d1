"""Response bodies built from database records, shaped per microversion."""
