"""The sandbox's keep-alive request handler (sandbox/moto_main.py) keeps a connection open only when the
next request cannot be misread: the request body was drained, and the answer was exactly as long as it
said.  Each case runs a tiny WSGI app on werkzeug's server with that handler, on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

pytest.importorskip("moto")

from werkzeug.serving import make_server

from sandbox import moto_main

SEEN: list[tuple[str, bytes]] = []


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = b""
    if environ.get("wsgi.input_terminated"):  # a chunked request
        body = environ["wsgi.input"].read()
    elif path != "/ignore-body":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    SEEN.append((path, body))
    if path == "/short":  # says 10 bytes, sends 5
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12345"]
    if path == "/long":  # says 3 bytes, sends 10
        start_response("200 OK", [("Content-Length", "3")])
        return [b"1234567890"]
    if path == "/head-with-body":  # a HEAD answer must not carry a body
        start_response("200 OK", [("Content-Length", "4")])
        return [b"body"]
    if path == "/no-length":  # werkzeug chunks it
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"chunk-one ", b"chunk-two"]
    answer = f"{path} {len(body)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [answer]


@pytest.fixture(scope="module")
def server():
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=moto_main._KeepAliveHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_port
    srv.shutdown()
    thread.join(5)


@pytest.fixture()
def conn(server):
    SEEN.clear()
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    yield connection
    connection.close()


def _get(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


def _closed_by_server(conn) -> bool:
    """True when the server has closed the socket (bytes http.client left unread are skipped)."""
    conn.sock.settimeout(2)
    try:
        while True:
            if not conn.sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_requests_share_one_connection(conn):
    response, data = _get(conn, "GET", "/one")
    first = conn.sock
    assert data == b"/one 0"
    assert response.getheader("Connection") is None
    response, data = _get(conn, "PUT", "/two", body=b"x" * 100)
    assert data == b"/two 100"
    response, data = _get(conn, "HEAD", "/three")
    assert response.status == 200 and data == b""
    response, data = _get(conn, "GET", "/four")
    assert data == b"/four 0"
    assert conn.sock is first, "the client had to reconnect"
    assert [path for path, _ in SEEN] == ["/one", "/two", "/three", "/four"]


def test_an_unread_body_is_drained_not_read_as_the_next_request(conn):
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    _get(conn, "POST", "/ignore-body", body=smuggled)
    first = conn.sock
    _, data = _get(conn, "GET", "/after")
    assert data == b"/after 0"
    assert conn.sock is first
    assert [path for path, _ in SEEN] == ["/ignore-body", "/after"]


def test_a_large_unread_body_is_drained_too(conn):
    response, _ = _get(conn, "POST", "/ignore-body", body=b"y" * (4 << 20))
    first = conn.sock
    assert response.status == 200
    _, data = _get(conn, "GET", "/after")
    assert data == b"/after 0" and conn.sock is first


def test_an_answer_shorter_than_it_says_closes_the_connection(conn):
    conn.request("GET", "/short")
    response = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_an_answer_longer_than_it_says_closes_the_connection(conn):
    conn.request("GET", "/long")
    response = conn.getresponse()
    assert response.read() == b"123"
    assert _closed_by_server(conn)  # the stray bytes can never be read as the next answer


def test_a_head_answer_with_a_body_closes_the_connection(conn):
    response, data = _get(conn, "HEAD", "/head-with-body")
    assert response.status == 200 and data == b""
    assert _closed_by_server(conn)


def test_a_kept_connection_stays_open(conn):
    _get(conn, "GET", "/one")
    assert not _closed_by_server(conn)


def test_a_chunked_answer_keeps_the_connection(conn):
    response, data = _get(conn, "GET", "/no-length")
    first = conn.sock
    assert data == b"chunk-one chunk-two"
    assert response.getheader("Transfer-Encoding") == "chunked"
    _, data = _get(conn, "GET", "/next")
    assert data == b"/next 0" and conn.sock is first


def test_a_chunked_request_closes_the_connection(conn):
    conn.putrequest("PUT", "/chunked")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"5\r\nhello\r\n0\r\n\r\n")
    response = conn.getresponse()
    assert response.read() == b"/chunked 5"
    assert response.getheader("Connection") == "close"
    assert conn.sock is None  # http.client closed it, as told


def test_a_request_refused_before_the_app_gets_its_error_and_a_close(server):
    headers = b"".join(b"X-Header-%d: v\r\n" % i for i in range(101))  # http.server allows 100
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"431"
    assert b"Connection: close" in answer
