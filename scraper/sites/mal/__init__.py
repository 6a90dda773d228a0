"""MyAnimeList review pages."""
