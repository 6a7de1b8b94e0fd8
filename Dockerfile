# edge-onboard: one small image for the API (`serve`) and the delivery workers (`worker`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge_onboard ./edge_onboard
COPY storage ./storage
COPY config ./config
COPY pages ./pages
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 edge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER edge
WORKDIR /home/edge
ENV EDGE_HOST=0.0.0.0 EDGE_PORT=8080 PYTHONUNBUFFERED=1
EXPOSE 8080
CMD ["edge-onboard", "serve"]
