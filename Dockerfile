# edge-onboard: one small image for the API (`serve`) and the delivery workers (`worker`).
# tests/test_packaging.py follows this file's COPY and pip steps outside Docker, and
# hadolint checks it: keep build steps to COPY, WORKDIR and `pip` commands.
FROM python:3.11-slim AS build
WORKDIR /src
# Dependencies first, pinned and hash-checked (requirements.lock, kept by `uv pip compile`),
# so a code change does not rebuild them.
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml setup.py README.md ./
COPY edge_onboard ./edge_onboard
COPY storage ./storage
COPY config ./config
COPY pages ./pages
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 edge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/edge
ENV EDGE_HOST=0.0.0.0 EDGE_PORT=8080 PYTHONUNBUFFERED=1
EXPOSE 8080
CMD ["edge-onboard", "serve"]
