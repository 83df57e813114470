"""Validation of an object's metadata as apimachinery's ValidateObjectMeta does it: the name, label
keys and values, annotation keys and their total size. Messages are worded as the real server's
(k8s.io/apimachinery/pkg/util/validation), one cause per problem, name first, then labels, then
annotations: a custom resource lists them before its schema errors, in the same 422."""

from __future__ import annotations

import json
import re

from .errors import Cause

SUBDOMAIN_FORMAT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_FORMAT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FORMAT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FORMAT = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
SUBDOMAIN = re.compile(f"^{SUBDOMAIN_FORMAT}$")
DNS_LABEL = re.compile(f"^{LABEL_FORMAT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FORMAT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FORMAT}$")
ANNOTATIONS_SIZE_LIMIT = 256 * 1024  # bytes of keys and values together

_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the rule, its examples (joined by ',  or ', two spaces) and the regex."""
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def subdomain_errors(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain."""
    errors = [_max_len(253)] if len(value) > 253 else []
    if not SUBDOMAIN.match(value):
        errors.append(regex_error(_SUBDOMAIN_MSG, SUBDOMAIN_FORMAT, "example.com"))
    return errors


def label_errors(value: str) -> list[str]:
    """validation.IsDNS1123Label (namespace names); a valid subdomain can only fail it by its dots."""
    errors = [_max_len(63)] if len(value) > 63 else []
    if not DNS_LABEL.match(value):
        errors.append("must not contain dots" if SUBDOMAIN.match(value)
                      else regex_error(_LABEL_MSG, LABEL_FORMAT, "my-name", "123-abc"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FORMAT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errors = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors += ["prefix part " + e for e in subdomain_errors(prefix)]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + _max_len(63))
    if not _QUALIFIED_NAME.match(name):
        errors.append("name part " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FORMAT, "MyName", "my.name", "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue."""
    errors = [_max_len(63)] if len(value) > 63 else []
    if not _LABEL_VALUE.match(value):
        errors.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FORMAT, "MyValue", "my_value", "12345"))
    return errors


def name_causes(name: str, dns_label: bool = False) -> list[Cause]:
    errors = label_errors(name) if dns_label else subdomain_errors(name)
    return [Cause("metadata.name", "FieldValueInvalid", f"Invalid value: {_quote(name)}: {e}") for e in errors]


def labels_causes(labels: dict[str, str]) -> list[Cause]:
    """ValidateLabels: per label, its key's problems, then its value's."""
    causes = []
    for key, value in labels.items():
        for subject, errors in ((key, qualified_name_errors(key)), (value, label_value_errors(value))):
            causes += [Cause("metadata.labels", "FieldValueInvalid", f"Invalid value: {_quote(subject)}: {e}") for e in errors]
    return causes


def annotations_causes(annotations: dict[str, str]) -> list[Cause]:
    """ValidateAnnotations: keys are qualified names, case aside (checked lower-cased, shown as
    written); keys and values together at most 256 KiB."""
    causes = [Cause("metadata.annotations", "FieldValueInvalid", f"Invalid value: {_quote(key)}: {e}")
              for key in annotations for e in qualified_name_errors(key.lower())]
    if sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items()) > ANNOTATIONS_SIZE_LIMIT:
        causes.append(Cause("metadata.annotations", "FieldValueTooLong",
                            f"Too long: may not be more than {ANNOTATIONS_SIZE_LIMIT} bytes"))
    return causes


def metadata_causes(meta: dict, check_name: bool, dns_label: bool = False) -> list[Cause]:
    """Every problem with an object's metadata, in the real server's order."""
    causes = name_causes(meta.get("name") or "", dns_label) if check_name else []
    return causes + labels_causes(meta.get("labels") or {}) + annotations_causes(meta.get("annotations") or {})
