"""Usage statistics, one package for one projection and its reading:

- `projection`: the asynchronous projection (`Usage`) and what each measure counts;
- `tables`: its tables and measures;
- `hours`: time cut into the cells of the statistics (local date x local hour), and open hours;
- `spreading`: a held rebuild's bookings spread into their cells by the database;
- `query`: asking it for figures of a period, grouped by one or two keys.
"""
