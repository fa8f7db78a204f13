"""Reports and figures built from the cache."""
