"""The write side and the service: domain rules, commands, HTTP API, CLI and scheduler."""
