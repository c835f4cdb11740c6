"""Whoosh: French analysis, index generations, and the one search behind every interface."""

from kb.knowledge.search.live import IndexMissing, SearchIndex
from kb.knowledge.search.results import Hit, SearchResults
from kb.knowledge.search.searcher import Snapshot

__all__ = ["Hit", "IndexMissing", "SearchIndex", "SearchResults", "Snapshot"]
