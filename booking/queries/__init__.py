"""The read side the API and the pages share: booking rows, pop-up rows, message threads,
who may see what (`access.may_see`), and keyset paging (`paging`). Queries only read; the
writes go through booking.usecases."""
