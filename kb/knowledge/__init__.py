"""Knowledge: the articles, their rendering, the build and the search."""
