"""The read side: projections that turn the log into tables shaped for queries.

Each projection declares the event types it handles and owns its tables; any of them can be
dropped and rebuilt from the log. Depends on `events` only.
"""
