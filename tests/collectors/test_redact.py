from __future__ import annotations

import statistics
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysmon.collectors.redact import CUT_MARK, MAX_CHARS, REDACTED, is_secret_key, redact_cmdline


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["app", "--password=hunter2"], "app --password=***"),
        (["app", "--password", "hunter2", "-v"], "app --password *** -v"),
        (["app", "--db-password", "x"], "app --db-password ***"),
        (["app", "--token", "abc"], "app --token ***"),
        (["docker", "login", "--password-stdin", "-u", "me"],
         "docker login --password-stdin -u me"),
        (["app", "--api-key=k", "--api_key", "k2"], "app --api-key=*** --api_key ***"),
        (["env", "PASSWORD=x", "DB_PASSWORD=y", "USER=z"],
         "env PASSWORD=*** DB_PASSWORD=*** USER=z"),
        (["app", "api_key=abc", "client_secret=s", "AWS_SECRET_ACCESS_KEY=q"],
         "app api_key=*** client_secret=*** AWS_SECRET_ACCESS_KEY=***"),
        (["app", "--passphrase=correct horse"], "app --passphrase=***"),  # all of the element
        (["curl", "https://bob:pa55@example.com/x"], "curl https://bob:***@example.com/x"),
        (["curl", "https://bob:p@ss/w@example.com/x"], "curl https://bob:***@example.com/x"),
        (["redis-cli", "-u", "redis://:pw@h:6379"], "redis-cli -u redis://:***@h:6379"),
        (["curl", "-H", "Authorization: Bearer abc.def"], "curl -H Authorization: ***"),
        (["curl", "-H", "Cookie: a=1; sid=2"], "curl -H Cookie: ***"),
        (["wget", "https://h/x?token=abc&page=2"], "wget https://h/x?token=***&page=2"),
        (["mysql", "-uroot", "-phunter2", "db"], "mysql -uroot -p*** db"),
        (["mysql", "-p", "db"], "mysql -p db"),  # -p alone prompts; "db" is the database
        (["sudo", "mysql", "-phunter2"], "sudo mysql -p***"),
        (["sshpass", "-p", "pw", "ssh", "host"], "sshpass -p *** ssh host"),
        (["sshpass", "-p", "-pw", "ssh", "host"], "sshpass -p *** ssh host"),
        (["redis-cli", "-a", "pw", "ping"], "redis-cli -a *** ping"),
        (["sh", "-c", "mysqldump --password=x --user root db"],
         "sh -c mysqldump --password=*** --user root db"),
        (["sh", "-c", "app --token 'a b' run"], "sh -c app --token *** run"),
        (["sh", "-c", "curl -H 'Authorization: Bearer abc' https://h/"],
         "sh -c curl -H 'Authorization: ***' https://h/"),
        (["sh", "-c", "su -c 'mysql -phunter2 db' root"],
         "sh -c su -c 'mysql -p*** db' root"),
        (["sh", "-c", "mysql -e 'select 1'; app -p pw"],
         "sh -c mysql -e 'select 1'; app -p ***"),  # ";" ends mysql's command
        (["git", "log", "--author=bob", "--max-tokens", "5"],
         "git log --author=bob --max-tokens 5"),
        (["app", "--keyboard", "us", "--tokenizer", "bpe", "--token-file", "/run/t"],
         "app --keyboard us --tokenizer bpe --token-file /run/t"),
        (["app", "--auth-type", "basic", "-v"], "app --auth-type basic -v"),
        (["app", "-p", "-v"], "app -p -v"),  # a flag after a generic -p is not its value
        (["python", "-m", "http.server", "-p", "8000"], "python -m http.server -p ***"),
        (["curl", "-u", "me", "https://h"], "curl -u me https://h"),
        (["app", "key: value", "host:port", "pass:"], "app key: *** host:port pass:"),
        ([], ""),
    ],
)  # fmt: skip
def test_redact_cmdline(args: list[str], expected: str) -> None:
    assert redact_cmdline(args) == expected


# Each required form, with "X" as the secret: the output must equal `expected` (so the
# rest stays readable) and must not contain "X".
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["prog", "-p", "X", "run"], "prog -p *** run", id="-p X"),
        pytest.param(["curl", "-u", "admin:X", "https://h/"], "curl -u admin:*** https://h/",
                     id="-u admin:X"),
        pytest.param(["curl", "--user", "admin:X"], "curl --user admin:***", id="--user admin:X"),
        pytest.param(["curl", "--user=admin:X", "-uadmin:X"],
                     "curl --user=admin:*** -uadmin:***", id="--user=admin:X"),
        pytest.param(["app", "--pw=X"], "app --pw=***", id="--pw=X"),
        pytest.param(["app", '{"password":"X"}'], 'app {"password":"***"}', id="json"),
        pytest.param(["app", '{"password": "X", "user": "bob"}'],
                     'app {"password": "***", "user": "bob"}', id="json-spaces"),
        pytest.param(["app", '{"pin":1,"token":"a\\"X","n":2}'],
                     'app {"pin":1,"token":"***","n":2}', id="json-escaped-quote"),
        pytest.param(["app", "-password", "X"], "app -password ***", id="-password X"),
        pytest.param(["app", "--password", "-X"], "app --password ***", id="--password -X"),
        pytest.param(["app", "--key", "X", "--keyboard", "us"], "app --key *** --keyboard us",
                     id="--key X"),
        pytest.param(["openssl", "rsa", "-passin", "pass:X", "-passout", "pass:X"],
                     "openssl rsa -passin pass:*** -passout pass:***", id="-passin pass:X"),
        pytest.param(["openssl", "rsa", "-passin", "env:PW", "-passout", "file:/run/pw"],
                     "openssl rsa -passin env:PW -passout file:/run/pw", id="-passin env:"),
        pytest.param(["app", "password: X"], "app password: ***", id="password: X"),
        pytest.param(["app", "password:", "X"], "app password: ***", id="password: + X"),
        pytest.param(["sh", "-c", "mysql -pX db"], "sh -c mysql -p*** db", id="sh -c mysql -pX"),
        pytest.param(["sh", "-c", "app --password -X && app --pw=X"],
                     "sh -c app --password *** && app --pw=***", id="sh -c flags"),
        pytest.param(["psql", "postgres://user:X@host/db"], "psql postgres://user:***@host/db",
                     id="url-userinfo"),
        pytest.param(["env", "API_TOKEN=X", "APP_SECRET=X", "DB_PASSWORD=X", "HOME=/root"],
                     "env API_TOKEN=*** APP_SECRET=*** DB_PASSWORD=*** HOME=/root",
                     id="assignments"),
        pytest.param(["sh", "-c", "cd /app && DB_PASSWORD=X API_TOKEN='X 2' ./run --v"],
                     "sh -c cd /app && DB_PASSWORD=*** API_TOKEN=*** ./run --v",
                     id="sh -c assignments"),
        pytest.param(["wget", "https://h/x?token=X&a=1"], "wget https://h/x?token=***&a=1",
                     id="query"),
        pytest.param(["curl", "-H", "Authorization: Bearer X", "https://h/"],
                     "curl -H Authorization: *** https://h/", id="authorization"),
        pytest.param(["curl", "-H", "Authorization:", "Bearer X"],
                     "curl -H Authorization: ***", id="authorization + value"),
    ],
)  # fmt: skip
def test_redacts_secret_forms(args: list[str], expected: str) -> None:
    assert "X" not in expected
    assert redact_cmdline(args) == expected


@pytest.mark.parametrize(
    ("key", "secret"),
    [("--password", True), ("PGPASSWORD", True), ("oauth_token", True), ("accesstoken", True),
     ("--author", False), ("--tokenizer", False), ("--max-tokens", False), ("key", True),
     ("--keyboard", False), ("pw", True), ("--pw", True), ("--pwn", False),
     ("private_key", True), ("--auth", True), ("session_id", True), ("HOME", False)],
)  # fmt: skip
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    ("args", "max_chars", "expected"),
    [
        (["app", "--token=" + "s" * 300], 20, "app --token=***" + CUT_MARK),
        (["x" * 30], 10, "x" * 9 + CUT_MARK),
        (["python3", "app.py", "--password=hunter2"], 10, "python3 a" + CUT_MARK),
        (["app", "--password", "hunter2hunter2"], 20, "app --password ***" + CUT_MARK),
        (["app", "--password=hunter2hunter2"], 20, "app --password=***" + CUT_MARK),
        (["psql", "postgres://user:hunter2@host/db"], 26, "psql postgres://user:***" + CUT_MARK),
        (["a", "b"], 3, "a b"),
        (["a", "b", "c"], 3, "a" + CUT_MARK),  # the cap falls on a separator
        (["app", "x"], 1, CUT_MARK),
        (["app"], 0, ""),
        (["mysql", "-pX"], 10, "mysql -p*" + CUT_MARK),  # "-p***" grew past the cap
    ],
)  # fmt: skip
def test_cap_then_redact(args: list[str], max_chars: int, expected: str) -> None:
    assert redact_cmdline(args, max_chars) == expected


CUT_FORMS = [
    ["app", "--password", "QQQQQQ", "-v"],
    ["app", "--password=QQQQQQ", "-v"],
    ["psql", "postgres://user:QQQQQQ@host/db"],
    ["curl", "-u", "admin:QQQQQQ", "https://h/"],
    ["app", '{"password": "QQQQQQ"}'],
    ["sh", "-c", "mysql -pQQQQQQ db"],
    ["sh", "-c", "app --token 'QQQ QQQ' run"],
    ["sh", "-c", "curl 'https://u:QQQQQQ@h/'"],
    ["curl", "-H", "Authorization: Bearer QQQQQQ"],
    ["wget", "https://h/x?token=QQQQQQ&a=1"],
    ["openssl", "rsa", "-passin", "pass:QQQQQQ"],
    ["app", "password:", "QQQQQQ"],
    ["env", "DB_PASSWORD=QQQQQQ", "app"],
]


@pytest.mark.parametrize("args", CUT_FORMS, ids=lambda a: " ".join(a))
def test_secret_cut_at_any_point_is_still_redacted(args: list[str]) -> None:
    for max_chars in range(len(" ".join(args)) + 5):
        text = redact_cmdline(args, max_chars)
        assert "Q" not in text, (max_chars, text)
        assert len(text) <= max_chars
    assert REDACTED in redact_cmdline(args)


# Whatever the secret holds, these forms hide all of it and keep the rest.
secrets = st.text(min_size=1, max_size=30)
no_space = st.text(st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc")), min_size=1)
in_url = no_space.filter(lambda t: not set(t) & set('"<>'))
in_json = no_space.filter(lambda t: not set(t) & set('"\\'))
in_shell = no_space.filter(lambda t: not set(t) & set("\"'"))


@given(secrets, st.sampled_from(["--password", "-password", "--key", "--api-key", "--pw"]))
def test_any_flag_value_is_hidden(secret: str, flag: str) -> None:
    assert redact_cmdline(["app", flag, secret, "-v"]) == f"app {flag} *** -v"
    assert redact_cmdline(["app", f"{flag}={secret}"]) == f"app {flag}=***"
    assert redact_cmdline(["env", f"DB_PASSWORD={secret}", "app"]) == "env DB_PASSWORD=*** app"
    assert redact_cmdline(["curl", "-H", f"Authorization: Bearer {secret}"]) == (
        "curl -H Authorization: ***"
    )


@given(in_url)
def test_any_url_password_is_hidden(secret: str) -> None:
    url = f"postgres://user:{secret}@host/db"
    assert redact_cmdline(["psql", url]) == "psql postgres://user:***@host/db"
    assert redact_cmdline(["sh", "-c", f"psql {url} -c 1"]) == (
        "sh -c psql postgres://user:***@host/db -c 1"
    )


@given(in_json, in_shell)
def test_any_json_or_shell_secret_is_hidden(in_json: str, in_shell: str) -> None:
    assert redact_cmdline(["app", f'{{"password": "{in_json}", "a": 1}}']) == (
        'app {"password": "***", "a": 1}'
    )
    assert redact_cmdline(["sh", "-c", f"mysql -p{in_shell} db"]) == "sh -c mysql -p*** db"
    assert redact_cmdline(["sh", "-c", f"app --token {in_shell} run"]) == (
        "sh -c app --token *** run"
    )


@given(st.lists(st.text(max_size=20), max_size=6), st.integers(min_value=0, max_value=60))
def test_output_never_exceeds_the_cap(args: list[str], max_chars: int) -> None:
    assert len(redact_cmdline(args, max_chars)) <= max_chars


# --- cost on hostile input -----------------------------------------------------------
# The old regular expressions took ~10-14 s on 120,000 "a"s. A linear scan takes a few
# ms (more on a noisy machine); the bounds below only catch quadratic blow-ups.

SHAPES = [
    "a", "a.", "a://", "-a=", ":@", '"password":', "password: ", "--password ", "-p ",
    "-u a:", "?token=", "a'", '\\"', "'", "\"'", '{"token":"', "Authorization: ", "a@",
    "a://b:c@", "://@:", "=", ":", "/",
]  # fmt: skip


def _shape(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _seconds(args: list[str], max_chars: int) -> float:
    """CPU seconds of this thread (not wall time): other processes on a busy machine do
    not count, so the bounds below measure the redaction's own work."""
    start = time.thread_time()
    redact_cmdline(args, max_chars)
    return time.thread_time() - start


@pytest.mark.parametrize("unit", SHAPES)
@pytest.mark.parametrize("size", [120_000, 1_000_000])
def test_hostile_argument_is_cheap(unit: str, size: int) -> None:
    arg = _shape(unit, size)
    for args in (["sleep", arg], ["sh", "-c", arg], [arg, arg]):
        assert _seconds(args, MAX_CHARS) < 0.5  # the collector's path: capped at 4096
        if size <= 120_000:
            # The whole text, uncapped: 0.25 s of CPU here, 0.6 s once in CI on a slower
            # machine; the quadratic regex this replaced took 13.9 s for 131 K chars and
            # would take minutes for these 240 K (test_time_grows_linearly checks growth).
            assert _seconds(args, size * 2 + 10) < 2.0


@pytest.mark.parametrize("unit", ["a", "a://", "-a=", ":@", '"password":', "-u a:", "-p "])
def test_time_grows_linearly(unit: str) -> None:
    # Quadruple the size: linear work takes ~4x as long, quadratic ~16x. Median of a few
    # runs plus 20 ms of slack keeps this stable on a busy shared machine.
    def median(size: int) -> float:
        args = ["sleep", _shape(unit, size)]
        return statistics.median(_seconds(args, size + 10) for _ in range(3))

    small, large = median(15_000), median(60_000)
    assert large < 8 * small + 0.02, (small, large)
