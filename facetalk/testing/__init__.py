"""The test harness, shipped for ``facetalk eval``: test doubles, kept apart from the product.

- :mod:`.simulated_user`: a scripted person in a LiveKit room who speaks from
  audio and records what comes back, timed at the receiver;
- :mod:`.scripted_llm`: an OpenAI-compatible chat server on loopback that
  answers from a script, fails or hangs on demand;
- :mod:`.local_stack`: ``facetalk agent start`` beside a local LiveKit server,
  as the tests and evaluations run it.

The product itself (worker, avatar, web server) never imports this package;
``facetalk eval latency|soak`` and the test suite do.
"""
