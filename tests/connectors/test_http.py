"""connectors/http.py against a local server (pytest-httpserver): rate limits honoured from
Retry-After (seconds, HTTP date) and X-RateLimit-Reset, 5xx retried with backoff, any other 4xx
a one-line RemoteError that never shows the token."""

import time
from email.utils import formatdate

import pytest
from werkzeug import Response

from kbqa.ingest.connectors.http import Http, RemoteError, RetryPolicy, rate_limit_wait

TOKEN = "tok-very-secret-123456"


def client(server, waits, **policy) -> Http:
    retry = RetryPolicy(**{"attempts": 4, "backoff": 0.5, "max_backoff": 2.0, **policy})
    return Http(
        server.url_for(""),
        headers={"Authorization": f"Bearer {TOKEN}"},
        retry=retry,
        sleep=waits.append,
    )


def replies(server, path, *responses):
    for response in responses:
        server.expect_ordered_request(path).respond_with_response(response)


def test_429_waits_the_retry_after_seconds_then_succeeds(httpserver):
    waits = []
    replies(
        httpserver,
        "/x",
        Response("slow down", status=429, headers={"Retry-After": "7"}),
        Response('{"ok": 1}', content_type="application/json"),
    )
    assert client(httpserver, waits).get_json("/x") == {"ok": 1}
    assert waits == [7.0]


def test_retry_after_as_an_http_date_is_waited_until(httpserver):
    waits = []
    later = formatdate(time.time() + 30, usegmt=True)
    replies(
        httpserver,
        "/x",
        Response("", status=429, headers={"Retry-After": later}),
        Response("{}", content_type="application/json"),
    )
    client(httpserver, waits).get_json("/x")
    assert len(waits) == 1 and 25 <= waits[0] <= 31


def test_403_with_rate_limit_headers_waits_for_the_reset(httpserver):
    waits = []
    reset = str(int(time.time()) + 12)
    replies(
        httpserver,
        "/x",
        Response(
            '{"message": "API rate limit exceeded"}',
            status=403,
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        ),
        Response("{}", content_type="application/json"),
    )
    client(httpserver, waits).get_json("/x")
    assert len(waits) == 1 and 9 <= waits[0] <= 13


def test_429_without_retry_after_backs_off_like_a_5xx(httpserver):
    waits = []
    replies(
        httpserver,
        "/x",
        Response("", status=429),
        Response("", status=502),
        Response("", status=503),
        Response("[1]", content_type="application/json"),
    )
    assert client(httpserver, waits).get_json("/x") == [1]
    assert waits == [0.5, 1.0, 2.0]  # doubled each time, capped at max_backoff


def test_5xx_past_the_attempts_is_a_remote_error(httpserver):
    waits = []
    httpserver.expect_request("/x").respond_with_data("boom", status=500)
    with pytest.raises(RemoteError, match="gave up after 4 tries: HTTP 500"):
        client(httpserver, waits).get_json("/x")
    assert len(waits) == 3


def test_a_long_retry_after_is_capped(httpserver):
    waits = []
    replies(
        httpserver,
        "/x",
        Response("", status=429, headers={"Retry-After": "86400"}),
        Response("{}", content_type="application/json"),
    )
    client(httpserver, waits, max_wait=60).get_json("/x")
    assert waits == [60]


def test_a_4xx_is_one_line_with_the_service_reason_and_no_token(httpserver):
    waits = []
    httpserver.expect_request("/rest/secret").respond_with_json(
        {"errorMessages": ["You do not have\npermission to view this."]}, status=401
    )
    with pytest.raises(RemoteError) as caught:
        client(httpserver, waits).get_json(f"/rest/secret?token={TOKEN}")
    message = str(caught.value)
    assert "\n" not in message and TOKEN not in message and waits == []
    assert message.endswith("HTTP 401: You do not have permission to view this.")
    assert caught.value.status == 401


def test_a_connection_refused_is_retried_then_reported_without_the_token():
    waits = []
    http = Http(
        "http://127.0.0.1:9",
        headers={"Authorization": f"Bearer {TOKEN}"},
        retry=RetryPolicy(attempts=2, backoff=0.1),
        sleep=waits.append,
    )
    with pytest.raises(RemoteError, match="gave up after 2 tries: ConnectError") as caught:
        http.get_bytes("/x")
    assert TOKEN not in str(caught.value) and waits == [0.1]


def test_rate_limit_wait_reads_each_header_form():
    now = 1_800_000_000.0
    assert rate_limit_wait({"retry-after": "3"}, now) == 3
    assert rate_limit_wait({"x-ratelimit-reset": str(now + 40)}, now) == 40
    assert rate_limit_wait({"x-ratelimit-reset": "15"}, now) == 15  # seconds, not a time
    assert rate_limit_wait({"x-ratelimit-reset": "2027-01-15T08:00:20Z"}, 1_800_000_000.0) > 0
    assert rate_limit_wait({}, now) is None


def test_paginate_follows_next_links(httpserver):
    httpserver.expect_request("/p", query_string="").respond_with_json(
        {"results": [1], "next": "/p?cursor=b"}
    )
    httpserver.expect_request("/p", query_string="cursor=b").respond_with_json({"results": [2]})
    http = client(httpserver, [])
    pages = list(http.paginate("/p", None, lambda page: page.get("next")))
    assert [p["results"] for p in pages] == [[1], [2]] and http.calls == 2


def test_a_download_streams_to_a_file_after_a_retry(httpserver, tmp_path):
    waits = []
    body = bytes(range(256)) * 4096  # 1 MiB
    replies(
        httpserver,
        "/file",
        Response("slow down", status=429, headers={"Retry-After": "1"}),
        Response(body, content_type="application/octet-stream"),
    )
    dest = tmp_path / "file.bin"
    assert client(httpserver, waits).download("/file", dest, max_bytes=len(body)) == len(body)
    assert dest.read_bytes() == body and waits == [1.0]


def test_a_download_over_the_cap_or_refused_leaves_no_file(httpserver, tmp_path):
    replies(
        httpserver,
        "/big",
        Response(b"x" * 300_000, content_type="application/octet-stream"),
        Response("no such file", status=404),
    )
    http, dest = client(httpserver, []), tmp_path / "big.bin"
    with pytest.raises(RemoteError, match="over 100000 bytes"):
        http.download("/big", dest, max_bytes=100_000)
    assert not dest.exists()
    dest.write_bytes(b"stale")
    with pytest.raises(RemoteError, match="HTTP 404") as refused:
        http.download("/big", dest, {"access_token": TOKEN})
    assert not dest.exists() and TOKEN not in str(refused.value)
