"""Segments: rule AST, parser, compiler to SQLAlchemy Core, counts and membership."""
