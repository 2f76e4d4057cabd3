"""Ingestion: partner deliveries from the inbox into typed, validated raw tables."""
