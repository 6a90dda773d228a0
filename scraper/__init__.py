"""review-archiver: a polite crawler and a faithful, queryable archive of review pages.

The package keeps its imports light so that ``reviews parse`` starts fast: the
database and HTTP stacks are only imported by the commands that use them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
