#!/usr/bin/env python3
"""Runs one SQL migration file against the environment's SQLite database.

Usage: scripts/migrate.py ENVIRONMENT FILE   (opsdeploy passes the file)
"""
import pathlib
import sqlite3
import sys

env, sql_file = sys.argv[1], sys.argv[2]
db = pathlib.Path(__file__).resolve().parent.parent / f"{env}.db"
with sqlite3.connect(db) as conn:
    conn.executescript(pathlib.Path(sql_file).read_text())
print(f"applied {pathlib.Path(sql_file).name} to {db.name}")
