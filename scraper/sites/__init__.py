"""Site parsers: pure functions of (html, url). One folder per site."""
