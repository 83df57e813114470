"""ModelArts error answers: `{"error_code", "error_msg"}` (v2 training errors add `error_solution`).

Codes from the ModelArts error-code appendix (REFERENCE §2, reference/modelarts-api/errors.json);
where the appendix has no specific code the generic ones are used: ModelArts.0102 "the resource
does not exist", ModelArts.0103 "duplicate names", ModelArts.0104 "parameter error",
ModelArts.0010 "internal error"; API Gateway answers authentication failures with APIGW.0301.
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, solution: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.solution = solution

    def body(self) -> dict:
        body = {"error_code": self.code, "error_msg": self.message}
        if self.solution:
            body["error_solution"] = self.solution
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(400, "ModelArts.0104", message, "Check the request parameters.")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "APIGW.0301", f"Incorrect IAM authentication information: {message}")


def bad_http(status: int, message: str) -> ApiError:
    """A request the gateway cannot read (too large, too slow, badly encoded): refused before any API."""
    return ApiError(status, "APIGW.0201", message)


def not_found_route(method: str, path: str) -> ApiError:
    return ApiError(404, "APIGW.0101", f"The API does not exist or has not been published: {method} {path}")


def method_not_allowed(method: str, path: str) -> ApiError:
    return ApiError(405, "APIGW.0101", f"The API does not exist or has not been published: {method} {path}")


def internal_error() -> ApiError:
    return ApiError(500, "ModelArts.0010", "Internal service error.")


def injected(status: int, operation: str) -> ApiError:
    if status == 429:
        return ApiError(429, "ModelArts.4206", f"Excessive number of requests to {operation}.", "Try again later.")
    return ApiError(status, "ModelArts.0010", "Internal service error.")


def job_not_found(job_id: str) -> ApiError:
    return ApiError(
        400, "ModelArts.2775", f"Training job (ID: {job_id}) not found.",
        "Check whether the training job information in the request is valid.",
    )


def algorithm_not_found() -> ApiError:
    return ApiError(
        400, "ModelArts.2755", "algorithm not found.",
        "Check whether the training project information in the request is valid.",
    )


def duplicate_job(name: str) -> ApiError:
    return ApiError(400, "ModelArts.2751", f"Duplicate training job (name {name}).", "Change training job name.")


def duplicate_algorithm(name: str) -> ApiError:
    return ApiError(
        400, "ModelArts.2821", f"Duplicate algorithm (name {name}).",
        "The algorithm name already exists, Please change algorithm name.",
    )


def model_not_found(model_id: str) -> ApiError:
    return ApiError(404, "ModelArts.0102", f"The model {model_id} does not exist.")


def duplicate_model(name: str, version: str) -> ApiError:
    return ApiError(400, "ModelArts.0103", f"The model {name} version {version} already exists.")


def model_not_ready(model_id: str) -> ApiError:
    return ApiError(
        400, "ModelArts.3515",
        f"The model {model_id} cannot be used for deploying services because it is still being published.",
        "Try again after the model is ready.",
    )


def model_failed(model_id: str) -> ApiError:
    return ApiError(400, "ModelArts.3515", f"The model {model_id} cannot be used for deploying services: its import failed.")


def service_not_found(service: str) -> ApiError:
    return ApiError(404, "ModelArts.3502", f"Service {service} does not exist.", "Ensure that the service name is correct.")


def duplicate_service(name: str) -> ApiError:
    return ApiError(400, "ModelArts.0103", f"The service name {name} already exists.")


def service_unavailable(service_id: str, status: str) -> ApiError:
    return ApiError(
        500, "ModelArts.4302",
        f"Gateway forwarding error because the access is rejected: service {service_id} is {status}.",
    )


def backend_failed(message: str) -> ApiError:
    return ApiError(500, "ModelArts.4503", f"Failed to respond due to backend service not found or failed to respond: {message}")
