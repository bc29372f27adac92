# backprop-serve: the lecture's network behind a FastAPI service.
#
#   docker build -t backprop-serve .
#   docker run --init -p 8000:8000 -p 8001:8001 -v backprop-models:/data backprop-serve
#
# Two stages. "build" turns the project into a wheel and installs it, with its
# runtime dependencies only, into a virtual environment at /opt/venv. "runtime"
# starts again from a clean python:3.11-slim and copies just that environment:
# no compiler, no build tools, no sources, no tests, no .git.
# tests/docker replays this file step by step on machines without a Docker engine;
# tests/docker/replay.py says which instructions and commands it can replay.

FROM python:3.11-slim AS build

WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when
# pyproject.toml changes, not on every change to the code.
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
 && python -m pip wheel --wheel-dir wheels --requirement requirements.txt

# Then the project itself, as a wheel, installed with those dependencies from the
# local wheels only. The environment gets no pip or setuptools of its own: the
# base image's pip installs into it (--python), so the runtime carries neither.
COPY README.md ./
COPY model/ model/
COPY service/ service/
RUN python -m pip wheel --no-deps --wheel-dir wheels . \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-index \
        --find-links wheels wheels/backprop_serve-*.whl \
 && python -m pip --python /opt/venv/bin/python check

# Slimming the runtime, in one layer:
# - botocore ships the API models of every AWS service (about 25 MB); the store speaks
#   S3 only, and the credential chain may ask STS or SSO (e.g. a Kubernetes web
#   identity). Keep those four and drop the rest.
# - The runtime never imports NumPy's own test suites (about 16 MB) or the C++ sources
#   and headers pysimdjson ships beside its compiled module (about 8 MB).
# tests/docker checks the size and that what is left still works.
RUN /opt/venv/bin/python -c "import pathlib, shutil, botocore; data = pathlib.Path(botocore.__file__).parent / 'data'; keep = {'s3', 'sts', 'sso', 'sso-oidc'}; [shutil.rmtree(p) for p in data.iterdir() if p.is_dir() and p.name not in keep]" \
 && /opt/venv/bin/python -c "import pathlib, shutil, numpy, simdjson; tests = [p for p in pathlib.Path(numpy.__file__).parent.rglob('tests') if p.is_dir()]; [shutil.rmtree(p) for p in tests]; [p.unlink() for p in pathlib.Path(simdjson.__file__).parent.iterdir() if p.suffix in {'.cpp', '.h', '.pyx', '.pxd'}]"

FROM python:3.11-slim AS runtime

# BACKPROP_HOST: listen on every interface of the container, not only its loopback.
# BACKPROP_WORKERS: uvicorn worker processes; override with -e BACKPROP_WORKERS=4.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    BACKPROP_MODEL_DIR=/data \
    BACKPROP_HOST=0.0.0.0 \
    BACKPROP_PORT=8000 \
    BACKPROP_GRPC_PORT=8001 \
    BACKPROP_WORKERS=1

# A system user without a login shell owns the model store and nothing else;
# the code in /opt/venv stays root-owned and read-only for it. /data is made
# here, before VOLUME, so a new named volume starts out owned by that user.
RUN groupadd --system --gid 10001 backprop \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin backprop \
 && mkdir /data /app \
 && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Numeric, so that orchestrators can tell it is not root without the image's /etc/passwd.
USER 10001:10001
VOLUME ["/data"]
# 8000: HTTP (REST, V2 REST); 8001: gRPC (the Open Inference Protocol, Triton's port).
EXPOSE 8000 8001

# Slim images have no curl: ask /health/ready with the standard library.
# urlopen raises on a refused connection or any 4xx/5xx (503 until a model is
# loaded), and an uncaught exception exits with status 1: "unhealthy".
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BACKPROP_PORT', '8000') + '/health/ready', timeout=4)"]

# Exec form: backprop-serve is the container's main process and receives
# SIGTERM from `docker stop` itself, then shuts down gracefully with status 0.
# Arguments after the image name are passed on, e.g. `--workers 4`.
ENTRYPOINT ["backprop-serve"]
