"""Scheduler: host states, filters, weighers and the FilterScheduler that picks hosts."""
