# The operator image: the operator and its SDK clients only. No TensorFlow, no emulators: those are
# the [local] and [test] extras, for the local stack and the tests.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MODELARTS_OPERATOR_WORK_DIR=/work

WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY operator ./operator
# Package data: the wheel carries crds/ and model_code/ (what `builtin: mnist-tensorflow` uploads).
COPY crds ./crds
COPY model_code ./model_code

RUN pip install --upgrade pip && pip install . \
    && groupadd --gid 10001 operator && useradd --uid 10001 --gid 10001 --no-create-home operator

USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["modelarts-operator"]
CMD ["run", "--all-namespaces", "--standalone", "--liveness=http://0.0.0.0:8080/healthz"]
