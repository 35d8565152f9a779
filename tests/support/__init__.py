"""Test helpers: real PostgreSQL targets, a local Databento gateway stand-in, fixtures."""
