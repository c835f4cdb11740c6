"""Whoosh: French analysis, index generations, and the one search behind every interface."""

from kb.knowledge.search.searcher import Hit, IndexMissing, SearchIndex, SearchResults, Snapshot

__all__ = ["Hit", "IndexMissing", "SearchIndex", "SearchResults", "Snapshot"]
