"""Persistence: peewee models, migrations and repositories. Nothing outside this package writes SQL."""
