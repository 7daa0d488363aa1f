"""Judging: the spec rubric, the Betley rubric, aggregation and the judge graph."""
