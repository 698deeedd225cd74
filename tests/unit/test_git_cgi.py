"""CGI output of `git http-backend` becomes the right HTTP response."""

from __future__ import annotations

from kpack_core.envtest.gitserver import _cgi_response


def test_status_header_sets_code_and_reason() -> None:
    response = _cgi_response(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nmissing", b"")
    assert response.status == 404
    assert response.reason == "Not Found"
    assert response.body == b"missing"
    assert response.headers["Content-Type"] == "text/plain"


def test_no_status_header_means_200_and_body_is_kept_binary() -> None:
    response = _cgi_response(b"Content-Type: application/x-git\n\n\x00\x01\r\n\r\n", b"")
    assert response.status == 200
    assert response.body == b"\x00\x01\r\n\r\n"


def test_no_output_is_a_500_with_stderr() -> None:
    response = _cgi_response(b"", b"fatal: broken")
    assert response.status == 500
    assert response.text == "fatal: broken"
