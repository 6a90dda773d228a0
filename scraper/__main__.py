"""``python -m scraper`` is the ``reviews`` command."""

from scraper.cli import main

raise SystemExit(main())
