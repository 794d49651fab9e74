"""The count_failed pipeline step (Lambda): CountFailedBatches."""
