"""Interfaces to chat tools (Slack comes next)."""
