"""The use-case layer: one handler per action of a person or a job.

A handler takes the input, the actor, the clock's `now` and the new ids it needs, and does
seal → load → decide → record inside the caller's transaction; it returns a result value
that the API, the pages, the CLI and the demo loader build their answers from. None of them
assembles an action itself.
"""
