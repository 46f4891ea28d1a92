"""Is a batch fit to go on: the quality gate on landing data, before bronze (Great Expectations 1.x)."""
