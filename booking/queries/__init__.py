"""The read side the API and the pages share: booking rows, pop-up rows, message threads,
premises rows and search, the free-premises registry, feed tokens, usage CSV, who may see
what (`access.may_see`), and keyset paging (`paging`). Queries only read; the writes go
through booking.usecases. Pages import nothing of booking/api/."""
