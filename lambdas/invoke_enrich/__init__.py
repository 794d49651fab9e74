"""The invoke_enrich pipeline step (Lambda)."""
