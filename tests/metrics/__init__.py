"""Tests of s2dm_lightning.metrics."""
