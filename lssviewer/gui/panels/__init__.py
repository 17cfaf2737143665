"""Dockable panels of the main window: summary statistics and likelihood profiles."""
