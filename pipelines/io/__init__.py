"""Reads and writes on any Hadoop URI, atomic outputs and quarantine."""
