"""The audit trail: records per event, hash chains, signed checkpoints, verify and export."""
