"""Request body schemas, one module per resource, selected by microversion."""
