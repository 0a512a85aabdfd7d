# syntax=docker/dockerfile:1
# RoboJam serving image: NumPy inference (the batching loop's inner loops compiled by Numba) behind gunicorn. No TensorFlow.
#   docker build -t robojam . && docker run -p 5000:5000 robojam

# Stage 1: the base + `serve` dependencies named in pyproject.toml, installed into a venv (not the project itself).
FROM python:3.11-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['serve']))" > requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# Stage 2: the venv, the service package and the shipped weights, run by an unprivileged user.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROBOJAM_BIND=0.0.0.0:5000
RUN useradd --system --no-log-init --uid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin robojam
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY robojam_format/ robojam_format/
COPY service/ service/
# robojam:weights picks another artifact in model/weights/ (infra/weights.py); it is served as robojam.npz.
ARG WEIGHTS=model/weights/robojam.npz
COPY ${WEIGHTS} model/weights/robojam.npz
USER 10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "service.healthcheck"]
CMD ["gunicorn", "-c", "service/gunicorn_conf.py", "service.app:create_app()"]
