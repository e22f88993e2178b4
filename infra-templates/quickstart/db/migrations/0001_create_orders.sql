-- Expand: a new table breaks nothing that runs today.
CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    customer    TEXT NOT NULL,
    total_cents INTEGER NOT NULL DEFAULT 0
);
