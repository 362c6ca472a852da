"""Reference-vector runner: checks our implementation against JSON vectors produced by Java Peergos.

`peergos vectors check DIR` loads every `*.json` file in DIR, recognises its format by its structure
(the formats of ../shared/vectors/README.md, whatever the file is called), runs every case it has a
checker for and reports `N passed, M failed, K skipped` per file plus a total line.
"""
