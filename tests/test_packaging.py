"""The newcomer's and the operator's paths, taken for real.

Every case starts from a clean copy of the repo (the files git tracks, plus new files
it does not ignore), builds it the way a user or the Dockerfile does, and installs it
into a fresh virtual environment made from the base interpreter: no editable install,
no source tree and no development venv on ``sys.path``. The installed command then runs
with no ``EDGE_*`` setting at all, from a folder outside any checkout.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from packaging.requirements import Requirement

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
# Repo folder -> where it lives in the wheel (the wheel claims only `edge_onboard`).
LAYOUT = {
    "edge_onboard": "edge_onboard",
    "storage": "edge_onboard/storage",
    "config": "edge_onboard/config",
    "pages": "edge_onboard/pages",
}
INSTALL_TIMEOUT = 600


def _copy_tracked(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("clean-copy")
    _copy_tracked(dest)
    return dest


def _pip_env() -> dict[str, str]:
    """pip's environment: this one, without anything pointing at the development venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    return env


def _run(
    argv: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr}"
    return result


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment of the interpreter behind this one; its bin folder."""
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(path)], env=_pip_env(), timeout=120)
    bin_dir = path / "bin"
    seen = _run(
        [str(bin_dir / "python"), "-c", "import sys; print('\\n'.join(sys.path))"],
        env={},
        cwd=path,
    ).stdout.splitlines()
    assert not [p for p in seen if p and Path(p).resolve().is_relative_to(ROOT)], seen
    return bin_dir


def _pip(bin_dir: Path, *args: str, cwd: Path | None = None) -> None:
    _run(
        [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        env=_pip_env(),
        cwd=cwd,
        timeout=INSTALL_TIMEOUT,
    )


def _assert_installed_outside_the_tree(bin_dir: Path) -> None:
    where = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import edge_onboard.webhooks.queue as m; print(m.__file__)",
        ],
        env={},
        cwd=bin_dir,
    ).stdout.strip()
    assert Path(where).is_relative_to(bin_dir.parent), where
    editable = _run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--editable", "--format=freeze"],
        env=_pip_env(),
    ).stdout
    assert editable.strip() == ""


class Server:
    def __init__(self, proc: subprocess.Popen[str], base: str, started: float, log: Path):
        self.proc, self.base, self.log = proc, base, log
        self.startup = 0.0
        deadline = started + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    self.startup = time.monotonic() - started
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no answer in 30 s:\n{log.read_text()}"
            time.sleep(0.02)


@contextlib.contextmanager
def _serve(command: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[Server]:
    log = cwd / f"serve-{port}.log"
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        yield Server(proc, f"http://127.0.0.1:{port}", started, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("serve did not stop within 15 s of SIGTERM") from None
    assert proc.returncode == 0, log.read_text()


def _page_assets(base: str, html: str) -> list[str]:
    """Same-origin URLs the page links (scripts, styles, icons)."""
    refs = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)  # not in-page anchors
    urls = [urljoin(base, ref) for ref in refs]
    origin = urlsplit(base).netloc
    return [url for url in urls if urlsplit(url).netloc == origin]


def test_the_wheel_holds_every_module_and_asset(clean_copy: Path, tmp_path: Path) -> None:
    """What `pip install .` ships is the whole source tree, nothing more (the wheel once
    lacked `edge_onboard.webhooks.queue`, which only a hand-kept package list could forget)."""
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=clean_copy,
        env=_pip_env(),
        timeout=INSTALL_TIMEOUT,
    )
    (wheel,) = tmp_path.glob("edge_onboard-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in n}
    expected = set()
    for folder, installed in LAYOUT.items():
        for path in (clean_copy / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add(f"{installed}/{path.relative_to(clean_copy / folder).as_posix()}")
    assert "edge_onboard/webhooks/queue/redis.py" in expected
    assert "edge_onboard/pages/sandbox/sdk.js" in expected
    assert sorted(expected - shipped) == [], "missing from the wheel"
    assert sorted(shipped - expected) == [], "in the wheel but not in the source tree"


def test_a_newcomer_installs_and_runs_it(clean_copy: Path, tmp_path: Path) -> None:
    """The README's first command, `pip install . && edge-onboard serve`, in a fresh venv."""
    bin_dir = _fresh_venv(tmp_path / "venv")
    _pip(bin_dir, "install", "-q", ".", cwd=clean_copy)
    _assert_installed_outside_the_tree(bin_dir)
    cli = str(bin_dir / "edge-onboard")
    work = tmp_path / "somewhere-else"
    work.mkdir()

    version = _run([cli, "--version"], env={}, cwd=work).stdout
    assert version.strip() == "edge-onboard 0.1.0"
    created = _run([cli, "keys", "create", "--org", "Acme"], env={}, cwd=work).stdout
    key = created.strip().splitlines()[-1]
    assert key.startswith("sk_live_")

    port = free_port()
    with _serve([cli, "serve", "--port", str(port)], work, {}, port) as server:
        print(
            f"\nwheel install: serve answered /healthz {server.startup * 1000:.0f} ms after start"
        )
        listening = [line for line in server.log.read_text().splitlines() if "listening" in line]
        assert len(listening) == 1 and "storage sqlite" in listening[0], listening
        auth = {"Authorization": f"Bearer {key}"}
        made = httpx.post(f"{server.base}/v1/onboarding-links", json={"name": "x"}, headers=auth)
        assert made.status_code == 201, made.text
        page = httpx.get(made.json()["data"]["hostedUrl"])
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = _page_assets(server.base, page.text)
        kinds = {urlsplit(a).path.rsplit(".", 1)[-1] for a in assets}
        assert {"js", "css"} <= kinds, assets
        for asset in assets:
            got = httpx.get(asset)
            assert got.status_code == 200 and got.content, asset
    # The other server, from the same install.
    port = free_port()
    granian = [cli, "serve", "--server", "granian", "--port", str(port)]
    with _serve(granian, work, {}, port) as server:
        listed = httpx.get(f"{server.base}/v1/onboarding-links", headers=auth)
        assert listed.status_code == 200 and listed.json()["pagination"]["total"] == 1
        assert "granian)" in server.log.read_text()
    assert (work / "edge_onboard.db").exists()


def _dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions per stage, continuation lines joined."""
    stages: list[list[tuple[str, str]]] = []
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def _image_step(
    instruction: str, args: str, roots: dict[str, Path], cwd: Path, source: Path, bin_dir: Path
) -> Path:
    """One build instruction, outside Docker: the stage's `/abs` paths live under
    ``roots["this"]`` (a folder per stage), and `pip` is the given venv's (the image's
    Python). Returns the working folder after it."""
    root = roots["this"]
    if instruction == "WORKDIR":
        cwd = root / args.lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
    elif instruction == "COPY":
        *sources, dest = shlex.split(args)
        origin = source
        if sources[0].startswith("--from="):
            origin = roots[sources[0].removeprefix("--from=")]
            sources = [s.lstrip("/") for s in sources[1:]]
        target = root / dest.lstrip("/") if dest.startswith("/") else cwd / dest
        for name in sources:
            found = origin / name
            assert found.exists(), f"COPY {name}: not in the repo"
            if found.is_dir():
                shutil.copytree(found, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, target / found.name)
    elif instruction == "RUN":
        for command in args.split("&&"):
            words = shlex.split(command)
            if words[0] != "pip":
                continue  # useradd, rm: nothing the install depends on
            words = [w for w in words if w != "--no-cache-dir"]  # the test may use pip's cache
            words = [str(root) + w if w.startswith("/") else w for w in words]
            expanded = []
            for word in words:  # the shell's globbing (`/wheels/*.whl`)
                expanded += sorted(map(str, Path("/").glob(word[1:]))) if "*" in word else [word]
            _pip(bin_dir, *expanded[1:], cwd=cwd)
    return cwd


def test_the_image_builds_and_starts(clean_copy: Path, tmp_path: Path) -> None:
    """The Dockerfile's steps (only the paths it copies, its pip commands) then `serve`
    and `worker --help` from the result. No Docker engine here: the steps are the point."""
    stages = _dockerfile_stages(clean_copy / "Dockerfile")
    assert len(stages) == 2
    stage_name = stages[0][0][1].split()[-1]  # FROM python:3.11-slim AS build
    build_root, image_root = tmp_path / "build-stage", tmp_path / "image"
    build_root.mkdir()
    image_root.mkdir()
    build_python = _fresh_venv(tmp_path / "build-python")
    image_python = _fresh_venv(tmp_path / "image-python")
    roots = {"this": build_root}
    cwd = build_root
    for instruction, args in stages[0][1:]:
        cwd = _image_step(instruction, args, roots, cwd, clean_copy, build_python)
    wheels = sorted(p.name for p in (build_root / "wheels").glob("*.whl"))
    assert any(w.startswith("edge_onboard-") for w in wheels) and len(wheels) > 10, wheels
    env: dict[str, str] = {}
    roots = {"this": image_root, stage_name: build_root}
    cwd = image_root
    for instruction, args in stages[1][1:]:
        if instruction == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
        cwd = _image_step(instruction, args, roots, cwd, clean_copy, image_python)
    cmd = next(tomllib.loads(f"c = {args}")["c"] for ins, args in stages[1] if ins == "CMD")
    assert cmd == ["edge-onboard", "serve"]
    _assert_installed_outside_the_tree(image_python)

    port = free_port()
    env.update(EDGE_HOST="127.0.0.1", EDGE_PORT=str(port))  # loopback only, in a test
    home = tmp_path / "home"
    home.mkdir()
    command = [str(image_python / cmd[0]), *cmd[1:]]
    with _serve(command, home, env, port) as server:
        assert httpx.get(f"{server.base}/readyz").status_code == 200
    worker = _run([str(image_python / "edge-onboard"), "worker", "--help"], env={}, cwd=home)
    assert "deliver" in worker.stdout


def test_the_lock_pins_every_dependency() -> None:
    """requirements.lock (what the image installs) pins, with hashes, a version that
    pyproject.toml allows for every dependency: regenerate it when they drift apart."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    header = lock.splitlines()[1]
    assert "uv pip compile pyproject.toml" in header
    pins = {
        m["name"].lower().replace("_", "-"): m["version"]
        for m in re.finditer(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)", lock, re.M)
    }
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name]), (spec, pins[name])
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])
    assert len(entries) == len(pins)
    assert all("--hash=sha256:" in entry for entry in entries)
