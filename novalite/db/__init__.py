"""Database layer: models, engine/session setup and plain query functions."""
