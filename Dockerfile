# One image for the web, worker and simulator processes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 1000 chatsite
WORKDIR /app

COPY pyproject.toml ./
RUN pip install --quiet .  # installs the pinned dependencies only (no packages are declared)

COPY . .
# collectstatic needs settings to load; this key exists only inside this build step.
RUN SECRET_KEY=collectstatic-only-$(python -c 'import secrets; print(secrets.token_hex(32))') \
    python manage.py collectstatic --noinput --verbosity 0

USER chatsite
EXPOSE 8000
CMD ["uvicorn", "chatsite.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--ws-max-size", "2097152", "--lifespan", "off", "--proxy-headers"]
