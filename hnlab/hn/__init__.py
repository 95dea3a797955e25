"""The Hacker News API: the async client (retries, deadlines, concurrency) and item parsing."""
