"""Starlette: the help center's pages and JSON API."""
