"""Alembic migrations for the archive (run with `reviews db upgrade`)."""
