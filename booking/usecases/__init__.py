"""The use-case layer: one handler per action of a person or a job.

Each handler takes the input, the actor, the time (`now`) and the new ids it needs, and
does the same four steps: seal personal data → load → decide → record. It returns a small
result value from which the API, the pages, the jobs and the demo build their answers.
None of them assembles a use case itself. `Unit` is what a handler works in: the write
transaction's connection and what recording needs (booking.usecases.unit).

- bookings.py — place a booking or a series, cancel either, approve, reject
- popups.py   — request, approve, reject, withdraw, expire (the job)
- messages.py — post to a booking's or a pop-up request's thread
- times.py    — local times that do not exist or occur twice (DST)
- catalogue.py — register, update, close for a period, retire premises
- accounts.py — create a user, create an organisation (booking.domain.accounts decides)
- feed_tokens.py — create and revoke a private feed token
- privacy.py — erase a person (crypto-shredding)
"""
