"""A fixture git repository built with dulwich, and dulwich's own smart-HTTP server for it on
127.0.0.1 (wsgiref), with a log of the requests it served."""

from __future__ import annotations

import base64
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import make_wsgi_chain


class FixtureRepo:
    """A repository whose every commit is the whole file map: `commit({...})` replaces the
    tree, so a test states the state it wants and the diff follows."""

    def __init__(self, path: Path, bare: bool = False):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.repo = Repo.init_bare(str(path)) if bare else Repo.init(str(path))
        self.files: dict[str, bytes] = {}
        self.clock = 1_700_000_000

    def _tree(self, files: Mapping[str, bytes]) -> bytes:
        store = self.repo.object_store
        children: dict[str, dict[str, bytes]] = {}
        tree = Tree()
        for path, data in files.items():
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, {})[rest] = data
            else:
                blob = Blob.from_string(data)
                store.add_object(blob)
                tree.add(head.encode(), stat.S_IFREG | 0o644, blob.id)
        for name, sub in children.items():
            tree.add(name.encode(), stat.S_IFDIR, self._tree(sub))
        store.add_object(tree)
        return tree.id

    def commit(
        self,
        changes: Mapping[str, bytes | str | None],
        message: str = "change",
        author: str = "Ada Lovelace <ada@example.com>",
    ) -> str:
        """Apply `changes` (None deletes a path) and commit; the new commit's sha."""
        for path, data in changes.items():
            if data is None:
                self.files.pop(path, None)
            else:
                self.files[path] = data.encode() if isinstance(data, str) else data
        self.clock += 3600
        commit = Commit()
        commit.tree = self._tree(self.files)
        try:
            commit.parents = [self.repo.refs[b"refs/heads/master"]]
        except KeyError:
            commit.parents = []
        commit.author = commit.committer = author.encode()
        commit.author_time = commit.commit_time = self.clock
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = message.encode()
        self.repo.object_store.add_object(commit)
        self.repo.refs[b"refs/heads/master"] = commit.id
        self.repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/master")
        return commit.id.decode()

    def blob(self, path: str) -> str:
        return Blob.from_string(self.files[path]).id.decode()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class GitHttpServer:
    """dulwich's smart-HTTP server at http://127.0.0.1:PORT/repo.git (and `/repo.wiki.git`
    when a wiki is given); with `password`, HTTP basic auth as GitHub asks of a private repo."""

    def __init__(self, repo: Repo, wiki: Repo | None = None, password: str = ""):
        self.requests: list[str] = []
        repos = {b"/repo.git": repo, **({b"/repo.wiki.git": wiki} if wiki else {})}
        app = make_wsgi_chain(DictBackend(repos))
        expected = "Basic " + base64.b64encode(f"x-access-token:{password}".encode()).decode()

        def logged(environ, start_response):
            self.requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
            if password and environ.get("HTTP_AUTHORIZATION") != expected:
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="GitHub"')])
                return [b"Unauthorized"]
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, logged, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}/repo.git"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
