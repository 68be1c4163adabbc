"""Turn-taking evaluation, measured from the user's side of a real room (``facetalk eval latency``)."""
