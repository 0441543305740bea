"""Render a Kustomize directory in Python: the subset of Kustomize that deploy/k8s uses.

    .venv/bin/python scripts/kustomize_lite.py deploy/k8s/overlays/prod > rendered.yaml

The real renderer is `kubectl kustomize` (or `kustomize build`); tests/deploy/test_k8s_manifests.py uses
it when installed and checks that this module renders the same objects. This one exists so the
manifests are still rendered and validated on a machine without either.

Supported: ``resources`` (files and directories), ``namespace``, ``labels`` (metadata only, without
selectors), ``images``, ``configMapGenerator`` with ``files`` and ``literals`` (without the name
hash: deploy/k8s disables it), and ``patches`` given inline or by path, either RFC 6902 JSON patches or
strategic-merge patches, with a ``target`` (kind, name, labelSelector) or the patch's own kind and
name. Anything else in a kustomization is refused rather than ignored.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches",
                  "configMapGenerator"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "ClusterSecretStore", "ClusterTriggerAuthentication", "PersistentVolume", "StorageClass"}
# Lists merged by the "name" of their items in a strategic-merge patch (as Kubernetes' patch strategy does).
MERGE_BY_NAME = {"containers", "initContainers", "volumes", "env", "ports", "imagePullSecrets"}


class KustomizeError(Exception):
    pass


def build(directory: str | Path) -> list[dict]:
    directory = Path(directory)
    kustomization_file = next((directory / name for name in ("kustomization.yaml", "kustomization.yml",
                                                            "Kustomization") if (directory / name).exists()), None)
    if kustomization_file is None:
        raise KustomizeError(f"no kustomization in {directory}")
    kustomization = yaml.safe_load(kustomization_file.read_text(encoding="utf-8")) or {}
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{kustomization_file}: not supported here: {sorted(unknown)}")

    objects: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(build(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    for generator in kustomization.get("configMapGenerator", []):
        objects.append(_config_map(directory, generator))
    for patch in kustomization.get("patches", []):
        _apply_patch(directory, patch, objects)
    for image in kustomization.get("images", []):
        for obj in objects:
            _set_image(obj, image)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = kustomization["namespace"]
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError("labels with includeSelectors/includeTemplates are not supported here")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    return objects


def _config_map(directory: Path, generator: dict) -> dict:
    if not (generator.get("options") or {}).get("disableNameSuffixHash"):
        raise KustomizeError(f"configMapGenerator {generator['name']}: only disableNameSuffixHash: true is supported")
    data = {}
    for entry in generator.get("files", []):
        key, _, source = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
        data[key] = (directory / source).read_text(encoding="utf-8")
    for entry in generator.get("literals", []):
        key, _, value = entry.partition("=")
        data[key] = value
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}


def _matches(obj: dict, target: dict) -> bool:
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and obj["metadata"]["name"] != target["name"]:
        return False
    if "labelSelector" in target:
        labels = obj["metadata"].get("labels") or {}
        for requirement in target["labelSelector"].split(","):
            key, _, value = requirement.partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
    return True


def _apply_patch(directory: Path, patch: dict, objects: list[dict]) -> None:
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text(encoding="utf-8")
    body = yaml.safe_load(text)
    target = patch.get("target")
    if target is None:
        if not isinstance(body, dict):
            raise KustomizeError("a JSON patch needs a target")
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
    matched = [obj for obj in objects if _matches(obj, target)]
    if not matched:
        raise KustomizeError(f"patch target {target} matches nothing")
    for obj in matched:
        if isinstance(body, list):
            for operation in body:
                _json_patch(obj, operation)
        else:
            merged = _strategic_merge(obj, {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
                                      | {"metadata": {k: v for k, v in body.get("metadata", {}).items()
                                                      if k != "name"}})
            obj.clear()
            obj.update(merged)


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]


def _json_patch(obj: dict, operation: dict) -> None:
    op, parts = operation["op"], _pointer(operation["path"])
    parent = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if op == "add":
        if isinstance(parent, list):
            parent.append(value) if last == "-" else parent.insert(int(last), value)
        else:
            parent[last] = value
    elif op == "replace":
        if isinstance(parent, list):
            parent[int(last)] = value
        else:
            if last not in parent:
                raise KustomizeError(f"replace: no {operation['path']}")
            parent[last] = value
    elif op == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    else:
        raise KustomizeError(f"JSON patch op {op!r} is not supported here")


def _strategic_merge(base, patch, key: str | None = None):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = _strategic_merge(base[name], value, name) if name in base else copy.deepcopy(value)
        return merged
    if (isinstance(base, list) and isinstance(patch, list) and key in MERGE_BY_NAME
            and all(isinstance(item, dict) and "name" in item for item in base + patch)):
        merged = [copy.deepcopy(item) for item in base]
        for item in patch:
            existing = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
            if existing is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[existing] = _strategic_merge(merged[existing], item)
        return merged
    return copy.deepcopy(patch)


def _set_image(node, image: dict) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    reference = container.get("image", "")
                    name = reference.split("@")[0].rsplit(":", 1)[0] if ":" in reference.split("/")[-1] \
                        else reference.split("@")[0]
                    if name == image["name"]:
                        container["image"] = image.get("newName", name) + (
                            f":{image['newTag']}" if "newTag" in image else "") + (
                            f"@{image['digest']}" if "digest" in image else "")
            _set_image(value, image)
    elif isinstance(node, list):
        for item in node:
            _set_image(item, image)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    yaml.safe_dump_all(build(argv[0]), sys.stdout, sort_keys=False, allow_unicode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
