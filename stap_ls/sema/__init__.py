"""Semantic analysis (pass 2): the tapset library index and its documentation, elaboration."""
