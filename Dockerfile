# The segment-rescorer image: the `rescorer` CLI (worker, simulate, train, retrain).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY scoring ./scoring
COPY offline ./offline
COPY streams ./streams
COPY rescorer ./rescorer
RUN pip install -c constraints.txt . && useradd --create-home --uid 10001 rescorer \
    && mkdir -p /models /data && chown rescorer /models /data
USER rescorer
ENV RESCORER_MODEL_DIR=/models RESCORER_DATA_DIR=/data
EXPOSE 9464
CMD ["rescorer", "worker"]
