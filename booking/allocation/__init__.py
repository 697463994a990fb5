"""Seasonal allocation rounds (vuorojako): the allocator and the round's rules.

`model` holds the allocator's input and output, `solver` the exact optimisation (HiGHS),
`greedy` the first-come baseline it is measured against, `explain` the reasons and metrics.
Everything here is pure: no I/O, no clock.
"""
