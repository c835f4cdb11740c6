"""Insights: usage counted from the help center, and the editors' report."""
