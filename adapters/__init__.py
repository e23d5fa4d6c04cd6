"""Venue adapters: read one venue and normalize it into ``risk.model``.

May import ``risk``; never ``aggregator``.
"""
