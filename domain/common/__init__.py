"""What every context shares: ARNs, errors, instants, ledger time, ids, the audit context."""
