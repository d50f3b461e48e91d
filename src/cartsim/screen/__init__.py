"""Pooled CRISPR knockout screens for CAR-T resistance: simulate and analyse."""
