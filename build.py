"""python build.py == kb build: check the content and build the search index."""

import sys

from kb.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
