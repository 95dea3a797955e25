"""A simulated Hacker News whose rules and truth are known: the world, its HTTP stand-in,
the offline demo, and the evaluation of the estimators against its truth."""
