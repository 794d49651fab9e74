"""The build_url pipeline step (Lambda)."""
