"""What `tinytrain describe` prints: the device's own description, with dtype names instead
of their codes, completed by what the host knows of the build (the project manifest,
.tinytrain.json: learning rate as built, update mode and the bytes it keeps, scheme).

The device's values win: a field it reports itself (a newer DESCRIBE may carry the update
mode and its bytes) replaces the manifest's; the manifest's are shown only when its model
hash is the device's. The learning rate the device applies now (GET_HPARAMS: `train --lr`
changes it) is `lr`; the one compiled in is `lr_as_built`.
"""
from __future__ import annotations

from .dtypes import BY_CODE

# manifest key -> field of the description (the names describe --json uses)
AS_BUILT = {"scheme": "scheme", "lr": "lr_as_built", "momentum": "momentum_as_built", "update": "update_mode",
            "update_seed": "update_seed", "update_state_bytes": "update_extra_bytes"}
DTYPE_FIELDS = ("input_dtype", "output_dtype")


def dtype_name(code: int) -> str:
    d = BY_CODE.get(code)
    return d.name if d is not None else f"code {code}"


def as_built(manifest: dict | None, model_hash: str) -> dict:
    """The build's figures the device does not report, from a project manifest of this model."""
    if not manifest or manifest.get("model_hash") != model_hash:
        return {}
    out = {field: manifest[key] for key, field in AS_BUILT.items() if manifest.get(key) is not None}
    memory = manifest.get("memory") or {}
    if "trainable_param_bytes" in memory:       # trained weights and everything their update keeps
        out["planned_trainable_bytes"] = memory["trainable_param_bytes"]
    return out


def description_fields(reported: dict, manifest: dict | None = None) -> dict:
    """describe's fields: what the device reported (a Description as a dict), with dtype
    names, then the host's knowledge of the build where the device reports nothing."""
    device = dict(reported)
    for f in DTYPE_FIELDS:
        if isinstance(device.get(f), int):
            device[f] = dtype_name(device[f])
    host = as_built(manifest, device.get("model_hash"))
    merged = dict(device)
    for k, v in host.items():
        merged.setdefault(k, v)
    if host:
        merged["host_known"] = sorted(k for k in host if k not in device)
    return merged


def format_fields(data: dict, project: str | None = None) -> str:
    host_known = set(data.get("host_known", ()))
    lines = [f"{k:18s} {', '.join(map(str, v)) if isinstance(v, list) else v}"      # capabilities: names
             for k, v in data.items() if k not in host_known and k != "host_known"]
    if host_known:
        lines.append(f"as built (project {project}):" if project else "as built (project manifest):")
        lines += [f"  {k:24s} {_value(k, data[k])}" for k in data if k in host_known]
    return "\n".join(lines)


def _value(key: str, v) -> str:
    if key.endswith("_bytes") and isinstance(v, int):
        return f"{v:,} B"
    return str(v)
