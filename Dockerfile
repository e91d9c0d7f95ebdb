# sysmon in a container (Levels 2-3: docker-compose-level2.yml, docker-compose-level3.yml).
#
#   docker build -t sysmon:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 -e SYSMON_AUTH__MODE=jwt \
#       -e SYSMON_JWT_SECRET=... -v sysmon-data:/var/lib/sysmon sysmon:0.1.0
#
# Stage 1 builds the wheel; the dashboard's vendor files (uPlot, Swagger UI, ReDoc) come
# from `npm ci` against package-lock.json and are copied into the wheel by setup.py, so
# the image needs no Node.js at run time. Stage 2 installs only that wheel (plus the
# `celery` extra for the worker), at the versions in constraints.txt, and runs as an
# unprivileged user.
#
# Why `--host 0.0.0.0`: inside a container 127.0.0.1 is the container's own loopback,
# which nothing outside can reach. Publish the port on the host's loopback
# (`127.0.0.1:8000:8000`) and put nginx in front; sysmon refuses a non-loopback bind
# with `auth.mode: none`, so the image's default command sets `auth.mode: jwt`.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY pyproject.toml setup.py README.md ./
COPY sysmon ./sysmon
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYSMON_DATABASE__PATH=/var/lib/sysmon/sysmon.db \
    SYSMON_AUTH__MODE=jwt
RUN groupadd --system --gid 10001 sysmon \
    && useradd --system --uid 10001 --gid sysmon --home-dir /var/lib/sysmon --shell /usr/sbin/nologin sysmon \
    && mkdir -p /var/lib/sysmon /etc/sysmon \
    && chown sysmon:sysmon /var/lib/sysmon
COPY --from=build /wheels /wheels
# The versions of the last green CI run (constraints.txt, as `make` installs them).
COPY constraints.txt /wheels/constraints.txt
RUN whl="$(ls /wheels/sysmon-*.whl)" \
    && pip install -c /wheels/constraints.txt "${whl}[celery]" && rm -rf /wheels
COPY config/config.yaml /etc/sysmon/config.yaml
ENV SYSMON_CONFIG=/etc/sysmon/config.yaml
USER sysmon:sysmon
WORKDIR /var/lib/sysmon
VOLUME ["/var/lib/sysmon"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4).status == 200 else 1)"]
CMD ["sysmon", "serve", "--host", "0.0.0.0", "--port", "8000"]
