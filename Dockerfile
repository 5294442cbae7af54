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
RUN pip install . \
    && useradd --system --home-dir /var/lib/mandate --shell /usr/sbin/nologin mandate \
    && mkdir -p /var/lib/mandate \
    && chown mandate:mandate /var/lib/mandate

# The admin token hash and any key material live here (a volume in docker-compose.yml).
ENV MANDATE_STATE_DIR=/var/lib/mandate
VOLUME ["/var/lib/mandate"]
WORKDIR /var/lib/mandate
USER mandate
EXPOSE 8000

# `mandate migrate` creates the schema once, before the server starts, so workers never race on DDL.
CMD ["sh", "-c", "mandate migrate && exec mandate serve --host 0.0.0.0 --port 8000"]
