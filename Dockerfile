# DVR's image: the same one runs the web process (gunicorn) and the worker (qcluster);
# fly.toml and the Procfile choose the command. Build: docker build -t dvr .
#
# BASE is any Debian-like image with Python 3.11 and its venv module: the official
# python:3.11-slim for real deploys, or (where Docker Hub is out of reach) a debootstrapped
# bookworm with python3.11 + python3.11-venv (bin/image_check.sh builds that one).
ARG BASE=python:3.11-slim-bookworm

# --- build: the dependencies, into a virtualenv the final stage copies -----------------------
FROM ${BASE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Where pip's certificate bundle lies in this stage, when the network needs one: the build
# context may carry build-ca.pem (copied in at build time by bin/image_check.sh, never
# committed; the glob lets it be absent) and `--build-arg PIP_CERT=/build/build-ca.pem`
# names it. Only this stage sees it: the final image holds the virtualenv, not the bundle.
ARG PIP_CERT
WORKDIR /build
RUN python3.11 -m venv /opt/venv
COPY requirements.txt build-ca.pe[m] ./

# Every wheel is binary (psycopg[binary] brings libpq), so no compiler and no apt packages.
RUN pip install --no-cache-dir -r requirements.txt

# The code, minus the bundle: the final stage copies /src, never the build context itself.
COPY . /src
RUN rm -f /src/build-ca.pem

# --- the image -------------------------------------------------------------------------------
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000

WORKDIR /app

# A system user to run as; the code stays owned by root, so the app cannot rewrite it.
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin dvr

COPY --from=build /opt/venv /opt/venv
COPY --from=build /src /app

# Static files are collected at build time and served by whitenoise. Settings need these
# values to load; they are build-time placeholders, never used at run time.
RUN DEBUG=false SECRET_KEY=collectstatic-build-only ALLOWED_HOSTS=localhost \
    TOKEN_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --no-input -v 0

# The dvr user created above, by number (a host can resolve a number, not a name).
USER 10001:10001
EXPOSE 8000

# The web process; the worker's machines run `python manage.py qcluster` instead.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "dvr.wsgi"]
