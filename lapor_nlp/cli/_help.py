"""``--help`` that shows each option's default, so a user never has to read the code for it."""

from __future__ import annotations

import argparse


class DefaultsFormatter(argparse.HelpFormatter):
    """argparse's ``ArgumentDefaultsHelpFormatter``, less the noise: no "(default: None)" or
    "(default: False)" for options that are off unless given, and nothing added to a help text
    that already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default is argparse.SUPPRESS
                or not action.option_strings or isinstance(action, argparse._HelpAction)):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Make ``parser``'s help show its options' defaults."""
    parser.formatter_class = DefaultsFormatter
