"""The JSON API (/api/v1): one blueprint per resource, documented in the OpenAPI document."""
