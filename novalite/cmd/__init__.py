"""Console entry points of the novalite daemons and tools."""
