"""Following the log: the in-memory follower and bulk decoding, SQL read-model copies with their
tracking and workers, rebuilds, leases, LISTEN/NOTIFY, read replicas and bounded store waits."""
