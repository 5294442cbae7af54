"""The policy language: documents, wildcard patterns, conditions, the evaluator and the rules of a
decision.
"""
