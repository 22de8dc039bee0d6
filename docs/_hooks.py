"""MkDocs hooks: figures and pages that live outside ``docs/`` are included, never copied by hand.

A figure typed into a page goes stale the day its script is re-run; a page that includes the file
the script wrote (``bench/RESULTS.md``, ``examples/RESULTS.md``) shows what was measured last.

- ``<!-- include: PATH -->`` (PATH from the repository root) is replaced by that file, and
  ``<!-- include: PATH#Heading start -->`` by the section whose heading starts with that text, up
  to the next heading of the same or a higher level. Headings are shifted below the page's own,
  and relative links (into the repository, not the site) keep only their text.
  An include that finds nothing fails the build, so a renamed section cannot silently vanish.
- ``architecture.md`` is the repository's ``ARCHITECTURE.md`` (a short note until it exists).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"^<!-- include: (?P<path>[^#\s]+)(?:#(?P<section>[^>]+?))? -->$", re.MULTILINE)
HEADING = re.compile(r"^(#{1,6}) (.*)$")
RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|#|mailto:)[^)\s]+\)")
GENERATED = {  # page in the site → file in the repository it shows
    "architecture.md": ("ARCHITECTURE.md", "# Architecture\n\nThe package map, the flow and which package may import "
                        "which are in `ARCHITECTURE.md` at the repository's root.\n"),
}


class IncludeError(PluginError):
    """An include directive names a file or section that is not there."""


def section(text: str, heading: str, where: str) -> str:
    """The part of ``text`` under the first heading that starts with ``heading``."""
    lines = text.splitlines()
    in_code = False
    for start, line in enumerate(lines):
        in_code ^= line.startswith("```")
        match = HEADING.match(line)
        if not in_code and match and match.group(2).startswith(heading.strip()):
            level = len(match.group(1))
            end, fenced = len(lines), False
            for index in range(start + 1, len(lines)):
                fenced ^= lines[index].startswith("```")
                other = HEADING.match(lines[index])
                if not fenced and other and len(other.group(1)) <= level:
                    end = index
                    break
            return "\n".join(lines[start:end])
    raise IncludeError(f"{where}: no heading starting with {heading.strip()!r}")


def shift_headings(text: str, below: int) -> str:
    """Headings of an included text pushed under level ``below``, so the page keeps one title."""
    lines, in_code = text.splitlines(), False
    top = min((len(m.group(1)) for m in map(HEADING.match, lines) if m), default=below + 1)
    for index, line in enumerate(lines):
        in_code ^= line.startswith("```")
        match = HEADING.match(line)
        if match and not in_code:
            level = min(6, len(match.group(1)) - top + below + 1)
            lines[index] = "#" * level + " " + match.group(2)
    return "\n".join(lines)


def unlink(text: str) -> str:
    """Relative links of an included file point into the repository, not the site: keep their text."""
    return RELATIVE_LINK.sub(lambda match: match.group(1), text)


def expand(markdown: str, page_path: str) -> str:
    """Every include directive of a page replaced by the text it names."""
    def replace(match: re.Match[str]) -> str:
        path = ROOT / match.group("path")
        where = f"{page_path}: include {match.group('path')}"
        if not path.is_file():
            raise IncludeError(f"{where}: no such file")
        text = path.read_text(encoding="utf-8")
        if match.group("section"):
            text = section(text, match.group("section"), where)
        before = markdown[:match.start()]
        levels = [len(m.group(1)) for m in map(HEADING.match, before.splitlines()) if m]
        return shift_headings(unlink(text), levels[-1] if levels else 1)

    return INCLUDE.sub(replace, markdown)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for page, (source, fallback) in GENERATED.items():
        path = ROOT / source
        content = unlink(path.read_text(encoding="utf-8")) if path.is_file() else fallback
        files.append(File.generated(config, page, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown, page.file.src_uri)
