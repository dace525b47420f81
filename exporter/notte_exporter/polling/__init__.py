"""One poll and what outlives it: poller, session lifecycle, snapshot, state, usage reads."""
