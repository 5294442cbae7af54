"""The command side: one eventsourcing Application (one log), group commit, the read port."""
