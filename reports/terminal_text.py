"""Text from outside made safe for the terminal: the one choke point for everything printed.

Snapshot and results strings (GPU, CPU and OS names, case ids, file names, server
replies) may hold escape sequences (clear screen, set the title), other control
characters, bidirectional overrides that reorder what is shown, or rich markup
(``[bold red]``, and ``[/]``, which raises). ``safe`` scrubs secrets, replaces control and
bidi characters with visible ``\\xNN``/``\\uNNNN`` escapes and escapes markup.
"""

from __future__ import annotations

import re

from rich.markup import escape

from gptoss_doctor.secrets import scrub

# C0 controls but tab and newline, DEL, C1 controls, and the bidi/invisible formatting
# characters (LRM/RLM, LRE..RLO, LRI..PDI, ALM, zero-width and BOM).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029"
                    "\u202a-\u202e\u2060-\u2069\ufeff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(text: object) -> str:
    """``text`` without secrets and with control/bidi characters made visible (no markup
    escaping: for click.echo and JSON-free stderr lines)."""
    return UNSAFE.sub(_visible, scrub(str(text)))


def safe(text: object) -> str:
    """``plain`` and rich markup escaped: for anything printed through a rich console."""
    return escape(plain(text))
