"""The Slack bot: answers mentions and DMs in threads, with sources and feedback buttons."""

from kbqa.integrations.slack.bot import create_app

__all__ = ["create_app"]
