"""Collection: which targets to scrape, and scraping them (asyncio, aiohttp)."""
