"""Kivy front end: screens render presenter state and forward intents; nothing else."""
