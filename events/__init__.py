"""The vocabulary and the log: event types, their serialisation and the event store.

This package depends on nothing else of ours; `booking` and `projections` depend on it.
"""
