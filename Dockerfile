# The Mandate API. Built and run by docker-compose.yml (PostgreSQL beside it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY api ./api
# mandate/ links to the three folders: the wheel installs them as mandate.domain, …
COPY mandate ./mandate
RUN pip install . \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/mandate \
        --shell /usr/sbin/nologin mandate \
    && mkdir -p /var/lib/mandate \
    && chown mandate:mandate /var/lib/mandate

# The admin token hash and any key material live here (a volume in docker-compose.yml).
ENV MANDATE_STATE_DIR=/var/lib/mandate
VOLUME ["/var/lib/mandate"]
WORKDIR /var/lib/mandate
# Numeric, so that orchestrators enforcing "run as non-root" can check it without /etc/passwd.
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=3).status != 200)"]

# `mandate migrate` creates the schema (safe to run concurrently: an advisory lock), then serve.
CMD ["sh", "-c", "mandate migrate && exec mandate serve --host 0.0.0.0 --port 8000"]
