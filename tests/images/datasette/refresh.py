"""refresh: the datasette example's scheduled job (a jobs: entry of its spec).

Loads /app/releases.csv into the table `releases` of the database given as
the argument, replacing its rows in one transaction, and records the run in
`refreshes` (when, how many rows). Datasette serves the same file and sees
the new rows on the next request.
"""
import csv
import datetime
import os
import sqlite3
import sys

SOURCE = os.environ.get("REFRESH_SOURCE", "/app/releases.csv")


def main(path):
    with open(SOURCE, newline="") as handle:
        rows = [(int(row["version"]), row["codename"], row["released"]) for row in csv.DictReader(handle)]
    conn = sqlite3.connect(path, timeout=60)
    try:
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS releases (version INTEGER PRIMARY KEY, codename TEXT, released TEXT)")
            conn.execute("CREATE TABLE IF NOT EXISTS refreshes (id INTEGER PRIMARY KEY, at TEXT, rows INTEGER)")
            conn.execute("DELETE FROM releases")
            conn.executemany("INSERT INTO releases VALUES (?, ?, ?)", rows)
            conn.execute("INSERT INTO refreshes (at, rows) VALUES (?, ?)",
                         (datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), len(rows)))
    finally:
        conn.close()
    print("refresh: %d releases loaded into %s" % (len(rows), path))


if __name__ == "__main__":
    main(sys.argv[1])
