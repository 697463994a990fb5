"""Pure domain: state, evolve and decide. No I/O, no clock reads, no framework imports."""
