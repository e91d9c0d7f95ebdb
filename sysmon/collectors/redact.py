"""Secret redaction for process command lines: cap first, then one linear pass.

Command lines are chosen by whoever starts a process, so this code must stay cheap on
hostile input. The regular expressions used before (quantified groups tried at every
offset) backtracked quadratically: an unprivileged ``exec -a "<120,000 x 'a'>" sleep 60``
kept one ``re.sub`` busy for 13.9 s while holding the GIL, which stalled the whole
monitor. Two rules prevent that:

* **Linear scanning.** Each argument is scanned once, left to right, with
  ``str.find``/``rfind`` and regular expressions made of one repeated character class
  (``\\s+``, ``[^\\s'"]*``, ...), which cannot backtrack. A small state machine carries
  what one word means for the next (the value of ``--password``, the ``user:password``
  of ``-u``, the program whose ``-p`` attaches its value). Every step moves the cursor
  forward and every backward look stops at the previous step, so the work is
  O(length) whatever the shape of the text.
* **Cap, then redact.** ``redact_cmdline`` first cuts argv to ``max_chars`` (whole
  arguments while they fit, then part of the next one), then redacts what it kept, then
  marks the cut with ``CUT_MARK``. The work is bounded by ``max_chars`` however long the
  real command line is, and a secret cut in half is still the value of its key, so it is
  still redacted. (Redacting first would process unbounded text.)

This is best-effort hygiene, not a guarantee; ``redact_cmdline`` lists what is caught.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from typing import Literal

__all__ = ["CUT_MARK", "MAX_CHARS", "REDACTED", "is_secret_key", "redact_cmdline"]

REDACTED = "***"
CUT_MARK = "…"
# The most a command line is ever allowed to cost: callers must not ask for more.
MAX_CHARS = 4096

# --- secret names ------------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pass", "pwd", "pw", "passphrase", "secret", "token", "auth",
        "authorization", "bearer", "credential", "credentials", "apikey", "cookie",
        "privatekey", "key",
    }
)  # fmt: skip
_SECRET_PAIRS = frozenset({("session", "id")})
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey")
_SPLIT = re.compile(r"[-_.]+")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _parts(key: str) -> list[str]:
    return [p for p in _SPLIT.split(key.lower()) if p]


def _is_secret_part(part: str) -> bool:
    return part in _SECRET_WORDS or part.endswith(_SECRET_SUFFIXES)


def is_secret_key(key: str) -> bool:
    """Whether a flag or variable name (``--db-password``, ``API_KEY``) names a secret.

    Matches whole name components so ``--author``, ``--keyboard`` or ``--max-tokens``
    stay readable, while ``DB_PASSWORD``, ``client_secret``, ``--pw`` and
    ``accesstoken`` are caught.
    """
    parts = _parts(key)
    return any(_is_secret_part(p) for p in parts) or any(
        pair in _SECRET_PAIRS for pair in itertools.pairwise(parts)
    )


def _flag_takes_secret(flag: str) -> bool:
    """A flag whose *last* component is secret takes a secret as its next argument.

    ``--api-key X`` does; ``--password-stdin`` or ``--token-file PATH`` do not.
    """
    parts = _parts(flag)
    return bool(parts) and (_is_secret_part(parts[-1]) or tuple(parts[-2:]) in _SECRET_PAIRS)


def _is_name(text: str) -> bool:
    return bool(text) and all(c in _NAME_CHARS for c in text)


def _is_flag(word: str) -> bool:
    """``-x``, ``-password`` or ``--db-password`` (no value attached)."""
    name = word[2:] if word.startswith("--") else word[1:] if word.startswith("-") else ""
    return name[:1].isascii() and name[:1].isalpha() and _is_name(name)


# --- programs and flags ------------------------------------------------------------

# mysql's -p only ever attaches its value ("-pSECRET"); a lone "-p" prompts.
_MYSQL = frozenset(
    {
        "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow",
        "mysqlpump", "mysqlbinlog", "mariadb", "mariadb-dump", "mariadb-admin",
        "mariadb-import", "mariadb-check",
    }
)  # fmt: skip
_ATTACHED: dict[str, tuple[str, ...]] = {
    **{name: ("-p",) for name in _MYSQL},
    "sshpass": ("-p",),
    "redis-cli": ("-a",),
}
# Their value may start with "-" (any other program's "-p -v" is two flags).
_SEPARATE: dict[str, tuple[str, ...]] = {"sshpass": ("-p",), "redis-cli": ("-a",)}
_USER_FLAGS = frozenset({"-u", "-U", "--user", "--proxy-user"})  # value "user:password"
_USER_PREFIXES = ("--user=", "--proxy-user=", "-u", "-U")
_HEADER_REST = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SEPARATORS = (";", "&&", "||", "|", "&")

# --- scanning ----------------------------------------------------------------------
# Each pattern is one repeated character class: matching is linear, nothing backtracks.

_QUOTES = "'\""
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\S+")
_DELIM = re.compile(r"[=:]")
_PLAIN = re.compile(r"[^\s'\"]*")
_QUERY_VALUE = re.compile(r"[^&#\s'\"]*")
_JSON_BARE = re.compile(r"[^\s,}\]]*")
_URL_RUN = re.compile(r"[^\s\"<>]*")  # "'" may be in a password
_AUTHORITY = re.compile(r"[^/?#\s\"<>]*")

_Pending = Literal["value", "value-no-dash", "user"]


def _span_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    m = pattern.match(text, pos)
    return pos if m is None else m.end()


class _Redactor:
    """Redacts one command line; what a word means for the next one carries over."""

    def __init__(self) -> None:
        self.pending: _Pending | None = None
        self.program: str | None = None  # the last program seen that has its own flags

    def argument(self, arg: str, *, shell: bool, cut: bool) -> str:
        """One argv element. ``shell``: it follows ``-c`` (a shell or script string)."""
        pending, self.pending = self.pending, None
        if pending == "value" or (pending == "value-no-dash" and not arg.startswith("-")):
            return REDACTED
        if pending == "user" and "://" not in arg:  # a URL is handled as one
            colon = arg.find(":")
            if colon >= 0:
                return arg[: colon + 1] + REDACTED
        if not shell:
            # "--password=a b" or "PASS=a b" as one element: the value is all the rest.
            eq = arg.find("=")
            if eq > 0 and _is_name(arg[:eq].lstrip("-")) and is_secret_key(arg[:eq]):
                return arg[: eq + 1] + REDACTED
        return _Text(self, arg, cut=cut).run()

    def see(self, word: str) -> None:
        if word.endswith(_SEPARATORS):
            self.program = None
            return
        name = os.path.basename(word.strip("'\"()`"))
        if name in _ATTACHED:
            self.program = name


class _Text:
    """One pass over one argument: words separated by whitespace, as in ``sh -c``."""

    def __init__(self, owner: _Redactor, text: str, *, cut: bool) -> None:
        self.owner = owner
        self.s = text
        self.n = len(text)
        self.cut = cut  # the text was cut at the cap: its end may hide the rest of a secret
        self.out: list[str] = []
        self.done = 0  # text[:done] is already in out
        self.last_quote = {q: text.rfind(q) for q in _QUOTES}
        self.url_run = (-1, -1, -1)  # start, end and last "@" of the URL run seen last

    def run(self) -> str:
        s, n = self.s, self.n
        i = 0
        while i < n:
            i = _span_end(_SPACE, s, i)
            if i < n:
                i = self.word(i, _span_end(_WORD, s, i))
        self.out.append(s[self.done :])
        return "".join(self.out)

    def replace(self, start: int, end: int) -> None:
        self.out.append(self.s[self.done : start])
        self.out.append(REDACTED)
        self.done = end

    # -- words: flags and their values --

    def word(self, i: int, j: int) -> int:
        """Handle the word ``s[i:j]``; returns where scanning resumes (past ``i``)."""
        s, owner = self.s, self.owner
        pending, owner.pending = owner.pending, None
        if pending is not None and not (pending == "value-no-dash" and s[i] == "-"):
            end = self.value_end(i)
            if pending != "user":
                self.replace(i, end)
                return end
            colon = s.find(":", i, end)
            if colon >= 0 and s.find("://", i, end) < 0:
                quoted = s[i] in _QUOTES and end - 1 > colon and s[end - 1] == s[i]
                self.replace(colon + 1, end - 1 if quoted else end)
                return end
            # "-u root" or "-u redis://...": an ordinary word
        word = s[i:j]
        resume = self.flag(word, i, j)  # with the program of the words before this one
        owner.see(word)
        return self.inline(i, j) if resume is None else resume

    def flag(self, word: str, i: int, j: int) -> int | None:
        owner = self.owner
        program = owner.program
        for flag in _ATTACHED.get(program, ()) if program else ():
            if word.startswith(flag) and len(word) > len(flag):  # mysql -pSECRET
                end = self.value_end(i + len(flag))
                self.replace(i + len(flag), end)
                return end
        if word in _USER_FLAGS:
            owner.pending = "user"
            return j
        for prefix in _USER_PREFIXES:
            if word.startswith(prefix) and len(word) > len(prefix):  # --user=me:SECRET
                start = i + len(prefix)
                end = self.value_end(start)
                colon = self.s.find(":", start, end)
                if colon >= 0 and self.s.find("://", start, end) < 0:
                    self.replace(colon + 1, end)
                    return end
                break
        if program is not None and word in _SEPARATE.get(program, ()):
            owner.pending = "value"
        elif word == "-p":
            if program not in _MYSQL:
                owner.pending = "value-no-dash"
        elif _is_flag(word) and _flag_takes_secret(word):
            owner.pending = "value"
        else:
            return None
        return j

    def value_end(self, i: int) -> int:
        """End of the shell word starting at ``i`` (quoted parts may hold spaces)."""
        s, n = self.s, self.n
        k = i
        while k < n:
            k = _span_end(_PLAIN, s, k)
            if k >= n or s[k] not in _QUOTES:
                break  # whitespace
            close = self.close_quote(k)
            if close < 0:
                # An unmatched quote closes an outer string ("sh -c 'mysql -pX'") when a
                # space or the end follows; otherwise the text was cut: take it all.
                if k == i or (k + 1 < n and not s[k + 1].isspace()):
                    return n
                break
            k = close + 1
        return k

    def close_quote(self, pos: int) -> int:
        """Index of the quote closing the one at ``pos`` (``\\"`` does not), or -1."""
        s, q = self.s, self.s[pos]
        k = pos + 1
        while k <= self.last_quote[q]:
            close = s.find(q, k)
            back = close
            while q == '"' and back > k and s[back - 1] == "\\":
                back -= 1
            if (close - back) % 2 == 0:
                return close
            k = close + 1
        return -1

    # -- inside a word: key=value, key: value, URLs --

    def inline(self, i: int, j: int) -> int:
        s = self.s
        lo = k = i  # keys are looked for back to lo only, so no character is read twice
        while True:
            m = _DELIM.search(s, k, j)
            if m is None:
                return j
            d = m.start()
            end = self.at_equals(d, lo) if s[d] == "=" else self.at_colon(d, lo)
            if end is None:
                lo = k = d + 1
            elif end >= j:
                return end
            else:
                lo = k = end

    def key_start(self, end: int, lo: int) -> int:
        s, k = self.s, end
        while k > lo and s[k - 1] in _NAME_CHARS:
            k -= 1
        return k

    def at_equals(self, d: int, lo: int) -> int | None:
        s = self.s
        start = self.key_start(d, lo)
        if start == d or not is_secret_key(s[start:d]):
            return None
        if start > 0 and s[start - 1] in "?&;":  # query parameter
            end = _span_end(_QUERY_VALUE, s, d + 1)
        else:
            end = self.value_end(d + 1)
        self.replace(d + 1, end)
        return end

    def at_colon(self, d: int, lo: int) -> int | None:
        s, n = self.s, self.n
        if s.startswith("//", d + 1):
            return self.url(d + 3)
        quote = s[d - 1] if d > lo and s[d - 1] in _QUOTES else ""
        key_end = d - len(quote)
        start = self.key_start(key_end, lo)
        if start == key_end or (quote and not (start > lo and s[start - 1] == quote)):
            return None
        key = s[start:key_end]
        if not is_secret_key(key):
            return None
        v = _span_end(_SPACE, s, d + 1)
        if v == n:  # "password:" then the value in the next argument
            self.owner.pending = "value"
            return None
        if not quote and key.lower() in _HEADER_REST:  # "Authorization: Bearer X": all of it
            opener = s[start - 1] if start > lo and s[start - 1] in _QUOTES else ""
            end = s.find(opener, v) if opener else -1
            end = n if end < 0 else end
        elif s[v] in _QUOTES:  # "password": "X"
            close = self.close_quote(v)
            end = n if close < 0 else close
            v += 1
        else:  # password: X, pass:X, "pin": 1234
            end = _span_end(_JSON_BARE, s, v) if quote else self.value_end(v)
        self.replace(v, end)
        return end

    def url(self, a0: int) -> int:
        """``scheme://user:SECRET@host``: redact the password, skip the authority."""
        s = self.s
        start, stop, at = self.url_run
        if not start <= a0 <= stop:
            stop = _span_end(_URL_RUN, s, a0)
            at = s.rfind("@", a0, stop)  # the last "@": passwords may hold one
            self.url_run = (a0, stop, at)
        if at >= a0:
            colon = s.find(":", a0, at)
            if colon >= 0:
                self.replace(colon + 1, at)
                return at
        end = _span_end(_AUTHORITY, s, a0)
        if self.cut and stop == self.n:  # "user:SECR" + cut: the "@" may be gone
            colon = s.find(":", a0, end)
            if colon >= 0:
                self.replace(colon + 1, end)
        return end


def _is_shell_flag(arg: str) -> bool:
    """``-c``, ``-lc``, ...: the next argument is a script (``sh -c``, ``python -c``)."""
    return len(arg) >= 2 and arg[0] == "-" and arg[-1] == "c" and arg[1:].isalpha()


def _cap(args: Sequence[str], max_chars: int) -> tuple[list[str], bool]:
    """The arguments whose joined text fits ``max_chars``, and whether any were cut.

    When something is cut, the kept text is at most ``max_chars - 1`` long (room for the
    mark): whole arguments while they fit, then the start of the next one.
    """
    size = -1
    for arg in args:
        size += 1 + len(arg)
        if size > max_chars:
            break
    else:
        return list(args), False
    limit = max_chars - 1
    kept: list[str] = []
    start = 0
    for arg in args:
        if start + len(arg) <= limit:
            kept.append(arg)
            start += len(arg) + 1
            continue
        if start < limit:
            kept.append(arg[: limit - start])
        break
    return kept, True


def redact_cmdline(args: Sequence[str], max_chars: int = MAX_CHARS) -> str:
    """Join ``argv`` into at most ``max_chars`` characters, secret values replaced by ``***``.

    argv is cut to ``max_chars`` *before* it is redacted (see the module docstring), and
    the result ends in ``…`` when anything was cut. The work is linear in ``max_chars``;
    callers keep it at most ``MAX_CHARS``.

    Caught, in any argument and inside arguments holding several words (``sh -c "..."``):

    * flags whose name ends in a secret word, and their value even when it starts with
      "-": ``--password X``, ``--password -X``, ``-password X``, ``--key X``,
      ``--api-key X``, ``--pw=X``; any other program's ``-p X`` (unless ``X`` starts
      with "-"); ``sshpass -p X``, ``redis-cli -a X``, and mysql-family ``-pX``;
    * the password of ``-u user:X``, ``--user user:X``, ``--user=user:X``, ``-U``;
    * assignments and keys whose name has a secret component: ``DB_PASSWORD=X``,
      ``API_TOKEN=X``, ``password: X`` (also as the two arguments ``password:`` ``X``),
      ``{"password": "X"}``, openssl's ``-passin pass:X``;
    * ``user:X@`` in URLs, secret query parameters (``?token=X``), and the whole value of
      ``Authorization:``, ``Proxy-Authorization:`` and ``Cookie:`` headers.

    Anything else passes through; this is best-effort hygiene, not a guarantee.
    """
    if max_chars <= 0 or not args:
        return ""
    kept, cut = _cap(args, max_chars)
    redactor = _Redactor()
    out: list[str] = []
    for index, arg in enumerate(kept):
        shell = index > 0 and _is_shell_flag(kept[index - 1])
        out.append(redactor.argument(arg, shell=shell, cut=cut and index == len(kept) - 1))
    text = " ".join(out)
    if cut or len(text) > max_chars:  # "-pX" -> "-p***" can grow the text
        text = text[: max_chars - 1] + CUT_MARK
    return text
