-- Expand: a nullable column; the running app ignores it.
ALTER TABLE orders ADD COLUMN note TEXT;
