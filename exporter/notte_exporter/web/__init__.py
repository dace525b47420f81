"""The HTTP edge: server, routes, basic auth, web config, status page."""
