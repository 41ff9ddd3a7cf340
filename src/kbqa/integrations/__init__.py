"""Interfaces to chat tools: the Slack bot."""
