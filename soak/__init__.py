"""``make soak``: a month of simulated time in minutes, checked against the simulator's truth."""
