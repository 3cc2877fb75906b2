"""Tests of the device side: links, guard, manager."""
