"""The database schema of review-archiver: tables (``tables``) and Alembic migrations.

This folder sits at the top of the repository and ships inside the wheel as
``scraper.schema`` (see ``[tool.setuptools.package-dir]`` in pyproject.toml).
"""
