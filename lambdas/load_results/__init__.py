"""The load_results pipeline step (Lambda): a run's answers and failures into Snowflake."""
