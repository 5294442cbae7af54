"""Roles, AssumeRole, STS sessions and their tokens, and the rules that judge a session alive."""
