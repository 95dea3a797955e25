"""hnlab.content: the open web, politely. ``fetcher`` (PoliteFetcher: robots.txt, one
request at a time per host, internal addresses refused, bodies capped) and ``guard``
(the address check made on the address connected to)."""
