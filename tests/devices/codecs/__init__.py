"""Tests of the pure codecs."""
