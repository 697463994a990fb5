"""The read side shared by the API and the pages: rows, searches, lists and CSV.

Pages and API views both read through these modules (pages import nothing of booking/api/);
who may see what is decided here, once.
"""
