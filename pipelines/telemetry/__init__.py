"""Telemetry failure prediction: generator, ingest, resampling, labels, windows, splits."""
