"""The pure core: batches and their states, identity, custody, audit hashing, errors.

Standard library only; no database, web or CLI code is imported here.
"""
