# The exchange image: every process of the Procfile runs from it (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN mkdir -p var
EXPOSE 8000
# Default: the web process; docker-compose.yml runs the engine, worker and beat from it.
CMD ["uvicorn", "exchange.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--loop", "uvloop", "--http", "httptools", "--ws", "websockets", "--lifespan", "off"]
