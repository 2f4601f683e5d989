"""Names from outside (file, folder, class and run names) inside Markdown, shown exactly as they are.

Streamlit reads Markdown in nearly every element (`st.markdown`, captions, alerts,
headers): a file called `[click me](javascript:…)` would become a link and
`:red[…]` would be coloured. A code span is the one Markdown construct whose
content is never interpreted (no links, emphasis, colours, icons, emoji or LaTeX).
"""

from __future__ import annotations

import re


def code_span(text: object) -> str:
    """`text` as an inline code span that shows it literally, whatever backticks or line breaks it holds."""
    value = " ".join(str(text).splitlines()) or " "  # a code span cannot hold a line break; nor be empty
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)  # CommonMark: a fence longer than any backtick run inside
    pad = " " if value.startswith("`") or value.endswith("`") or value.strip() == "" else ""
    return f"{fence}{pad}{value}{pad}{fence}"


MARKDOWN_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")  # every ASCII punctuation character


def plain(text: object) -> str:
    r"""`text` (an error message from catdog, which may hold file names) as Markdown that shows it as written.

    Every ASCII punctuation character becomes a numeric character reference (`*` -> `&#42;`), which
    CommonMark shows as the character and never reads as syntax: a name like `[x](http://…)`,
    `*x*`, `:red[x]` or `$x$` reads as typed, in the message's normal font and line breaks. (A bare
    `https://…` in a name still shows as a link to exactly that text: Streamlit finds those in the
    decoded text, after Markdown. A disguised link, `[text](elsewhere)`, is never made.)
    """
    return MARKDOWN_PUNCTUATION.sub(lambda m: f"&#{ord(m.group())};", str(text))
