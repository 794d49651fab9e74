"""The query_ids pipeline step (Lambda)."""
