"""Custom policies, attachments to principals, and assembling a principal's identity layer."""
