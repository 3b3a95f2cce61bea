# Conveyor: one image for the API, the worker and migrations.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
COPY schema.graphql /src/schema.graphql
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY conveyor/ conveyor/
COPY migrations/ migrations/
COPY schema.graphql ./
RUN uv sync --frozen --no-dev
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --system --uid 1001 conveyor
USER conveyor
EXPOSE 8000
CMD ["conveyor", "serve", "--host", "0.0.0.0", "--port", "8000"]
