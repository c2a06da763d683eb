# One image for every Python process of the system (web, relay, workers, one-off commands).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system app && python manage.py collectstatic --noinput -v0
USER app
EXPOSE 8000
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-ws", \
     "--static-path-route", "/static", "--static-path-mount", "/app/.data/static", "config.wsgi:application"]
