# DVR's image: the same one runs the web process (gunicorn) and the worker (qcluster);
# fly.toml and the Procfile choose the command. Build: docker build -t dvr .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PORT=8000

WORKDIR /app

# A system user to run as; the code stays owned by root, so the app cannot rewrite it.
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin dvr

# Dependencies first, in their own layer: every wheel is binary (psycopg[binary] brings
# libpq), so no compiler and no apt packages are needed.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .

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
