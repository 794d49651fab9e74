"""enrichctl: run the pipeline locally and operate the deployed one."""
