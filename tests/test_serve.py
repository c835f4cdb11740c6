"""kb serve on its embedded defaults: builds the index, migrates SQLite, serves."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
from conftest import ROOT, Page, write_tree

from kb.testing import start_kb, stop, wait_until_up


def serve(cwd: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    return start_kb("serve", *args, cwd=cwd)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_builds_migrates_and_serves_the_shipped_content(tmp_path: Path, workers: str) -> None:
    process, base = serve(tmp_path, "--content", str(ROOT / "content"), "--workers", workers)
    try:
        wait_until_up(process, base)
        home = Page(httpx2.get(base + "/"))
        assert "Votre demande concerne" in home.text
        assert "Questions les plus fréquentes" in home.text
        with urllib.request.urlopen(base + "/api/search?q=mot%20de%20passe%20oubli%C3%A9") as r:
            assert b'"slug":"mot-de-passe-oublie"' in r.read()
        # Each worker accepts on its own socket: the kernel shares the connections evenly.
        assert listening_sockets(int(base.rsplit(":", 1)[1])) == int(workers)
    finally:
        out = stop(process)
    assert "Index absent ou plus ancien que le contenu : construction" in out
    assert (tmp_path / "search_index" / "CURRENT").exists()
    assert (tmp_path / "var" / "kb.sqlite3").exists()
    assert "Traceback" not in out


def listening_sockets(port: int) -> int:
    """Sockets listening on 127.0.0.1:port, from the kernel's table."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1] == local and line.split()[3] == "0A")


def test_serve_with_workers_says_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["serve", "--content", str(ROOT / "content"), "--port", str(port)]
        result = subprocess.run(
            [sys.executable, "-m", "kb.cli", *command, "--workers", "2"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert f"Impossible d'écouter sur 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_broken_content_with_path_line_messages(tmp_path: Path) -> None:
    content = write_tree(
        tmp_path / "content",
        {"abonnement/_category.yml": "title: A\n", "abonnement/a.md": "---\ntitle: [\n---\nx\n"},
    )
    result = subprocess.run(  # the editors' preview stops at once; replicas: test_publishing
        [sys.executable, "-m", "kb.cli", "serve", "--reload", "--content", str(content)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "abonnement/a.md:2: YAML invalide" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("trusted", "seen_as"), [("127.0.0.1", "203.0.113.9"), ("192.0.2.0/24", "127.0.0.1")]
)
def test_serve_believes_forwarded_addresses_from_trusted_proxies_only_and_logs_no_token(
    tmp_path: Path, trusted: str, seen_as: str
) -> None:
    content = write_tree(tmp_path / "content", {"abonnement/_category.yml": "title: A\n"})
    process, base = start_kb(
        "serve", "--content", str(content), cwd=tmp_path, env={"KB_TRUSTED_PROXIES": trusted}
    )
    try:
        wait_until_up(process, base)
        with urllib.request.urlopen(base + "/connexion") as response:
            cookie = response.headers["set-cookie"].split(";")[0]
        token = cookie.split("=", 1)[1]
        login = urllib.request.Request(
            base + "/connexion",
            data=f"csrf={token}&identifiant=0750654D&mot_de_passe=x".encode(),
            headers={"Cookie": cookie, "X-Forwarded-For": "203.0.113.9"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(login)
        assert refused.value.code == 400
        refused.value.close()  # the answer's socket
        with pytest.raises(urllib.error.HTTPError) as expired:
            urllib.request.urlopen(base + "/activation/jeton-secret-de-test-123")
        assert expired.value.code == 410
        expired.value.close()
    finally:
        out = stop(process)
    with sqlite3.connect(tmp_path / "var" / "kb.sqlite3") as database:
        [address] = database.execute(
            "SELECT address FROM audit WHERE event = 'login_failure'"
        ).fetchone()
    assert address == seen_as
    assert "/activation/***" in out and "jeton-secret-de-test-123" not in out
