"""Development and test tooling of market-backfill (not part of the runtime package):
the embedded PostgreSQL, the synthetic sample generator and the DBN writer."""
