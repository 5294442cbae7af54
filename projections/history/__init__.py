"""The temporal index, answers as of any instant, and access reviews."""
