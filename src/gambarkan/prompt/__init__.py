"""Prompts: A1111 syntax (syntax.py), text conditioning (encode.py) and translation."""
