# The exchange image: every process of the Procfile runs from it (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The order book compiled with mypyc (bin/build-book); gcc only for that step.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && python bin/build-book \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
RUN mkdir -p var
EXPOSE 8000
# Default: the web process; docker-compose.yml runs the engine, worker and beat from it.
CMD ["uvicorn", "exchange.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--loop", "uvloop", "--http", "httptools", "--ws", "websockets", "--lifespan", "off"]
