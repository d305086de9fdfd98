#!/usr/bin/env python3
"""Write the compact Heroku contract the fake Heroku (standins/heroku.py) checks every request against.

    python3 scripts/heroku_contract.py [SCHEMA.json] [--output PATH] [--check]

SCHEMA.json is Heroku's official Platform API hyper-schema: `schema.json` of the public
https://github.com/heroku/platform-api repository (what `GET https://api.heroku.com/schema`
answers); default `../shared/heroku/platform-api-schema.json` beside the repository.
The contract keeps only the links of ENDPOINTS (the endpoints the product calls and the fake
answers) and the parts of the schema they reach through `$ref`, at the same JSON pointers, so
that the fake validates exactly as it would against the whole schema. Its header names the
source and its sha256. `--check` writes nothing and exits 1 when the committed contract is not
what the schema gives. Standard library only.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = REPO_ROOT.parent / "shared" / "heroku" / "platform-api-schema.json"
DEFAULT_OUTPUT = REPO_ROOT / "standins" / "heroku_contract.json"
SOURCE = ("schema.json of https://github.com/heroku/platform-api "
          "(Heroku Platform API v3 hyper-schema, MIT licence, as GET https://api.heroku.com/schema answers)")

# "METHOD path", a path parameter written {name}: each must match exactly one link of the schema.
ENDPOINTS = (
    "GET /account/rate-limits",
    "GET /account",
    "GET /addons",
    "GET /addons/{addon}",
    "GET /apps/{app}",
    "GET /apps/{app}/addons",
    "GET /apps/{app}/addons/{addon}",
    "PATCH /apps/{app}/addons/{addon}",
    "GET /apps/{app}/config-vars",
    "GET /addon-services/{service}/plans",
)

_SCHEMA_PARAM = re.compile(r"\{\([^)]*\)\}")
_SPEC_PARAM = re.compile(r"\{[^}]*\}")
# A resource's own `links` and `definitions` are kept only as far as something reaches them.
_PRUNED_KEYS = ("links", "definitions")


class ContractError(Exception):
    """Bad input: one line for the user."""


def contract_build(schema: dict, *, source_sha256: str, endpoints=None) -> dict:
    """The contract (header + compact schema) of `schema` for `endpoints` (default ENDPOINTS)."""
    endpoints = ENDPOINTS if endpoints is None else endpoints
    definitions = schema.get("definitions")
    if not isinstance(definitions, dict):
        raise ContractError("not a Heroku hyper-schema: it has no 'definitions' object")
    found = {}  # endpoint -> (resource name, link)
    for resource, definition in definitions.items():
        for link in definition.get("links", []) if isinstance(definition, dict) else []:
            key = f"{str(link.get('method', '')).upper()} {_SCHEMA_PARAM.sub('{}', str(link.get('href', '')))}"
            for endpoint in endpoints:
                method, _, path = endpoint.partition(" ")
                if key == f"{method.upper()} {_SPEC_PARAM.sub('{}', path)}":
                    if endpoint in found:
                        raise ContractError(f"endpoint {endpoint!r} matches more than one link of the schema")
                    found[endpoint] = (resource, link)
    missing = [endpoint for endpoint in endpoints if endpoint not in found]
    if missing:
        raise ContractError(f"endpoint(s) not in the schema: {', '.join(missing)}")

    compact = {key: schema[key] for key in ("$schema", "id", "type", "title") if key in schema}
    compact["description"] = "Compact contract: the links the product calls and what they reference."
    compact["definitions"] = {}
    wanted, seen = [], set()
    for endpoint in endpoints:
        resource, link = found[endpoint]
        compact["definitions"].setdefault(resource, {}).setdefault("links", []).append(copy.deepcopy(link))
        wanted.extend(_references(link))
    while wanted:
        pointer = wanted.pop()
        if pointer in seen:
            continue
        seen.add(pointer)
        node = _resolve(schema, pointer)
        if _is_resource(pointer):
            node = {key: value for key, value in node.items() if key not in _PRUNED_KEYS}
        _place(compact, pointer, copy.deepcopy(node))
        wanted.extend(_references(node))
    # Keys in a fixed order whatever the schema's, links in ENDPOINTS order: a stable diff.
    compact["definitions"] = {name: _resource_ordered(value) for name, value in sorted(compact["definitions"].items())}
    return {
        "contract": {
            "source": SOURCE,
            "source_sha256": source_sha256,
            "generated_by": "scripts/heroku_contract.py",
            "endpoints": list(endpoints),
            "schema_sha256": schema_digest(compact),
        },
        "schema": compact,
    }


def schema_digest(schema: dict) -> str:
    """sha256 of the compact schema's canonical JSON: the header's check on the body."""
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def contract_text(contract: dict) -> str:
    return json.dumps(contract, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def contract_from_file(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"cannot read the schema {path}: {exc.strerror or exc}") from None
    try:
        schema = json.loads(raw)
    except ValueError as exc:
        raise ContractError(f"{path} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ContractError(f"{path} is not a JSON object")
    return contract_build(schema, source_sha256=hashlib.sha256(raw).hexdigest())


def _references(node):
    """Every JSON pointer `node` refers to: `$ref`s and the `{(...)}` parameters of hrefs."""
    if isinstance(node, list):
        for value in node:
            yield from _references(value)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if not value.startswith("#/"):
                    raise ContractError(f"only local $refs are supported, found {value!r}")
                yield value
            elif key == "href" and isinstance(value, str):
                for parameter in _SCHEMA_PARAM.findall(value):
                    yield unquote(parameter[2:-2])
            else:
                yield from _references(value)


def _tokens(pointer):
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[2:].split("/")]


def _resolve(schema, pointer):
    node = schema
    for token in _tokens(pointer):
        try:
            node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ContractError(f"$ref {pointer!r} does not resolve in the schema") from None
    return node


def _is_resource(pointer):
    tokens = _tokens(pointer)
    return len(tokens) == 2 and tokens[0] == "definitions"


def _place(compact, pointer, node):
    """Put `node` at `pointer` in `compact`, keeping what parts of it are already there."""
    *parents, last = _tokens(pointer)
    target = compact
    for token in parents:
        target = target.setdefault(token, {})
    if isinstance(target.get(last), dict) and isinstance(node, dict):
        target[last] = {**node, **target[last]}
    else:
        target[last] = node


def _resource_ordered(resource):
    ordered = {key: resource[key] for key in sorted(resource) if key not in _PRUNED_KEYS}
    if "definitions" in resource:
        ordered["definitions"] = dict(sorted(resource["definitions"].items()))
    if "links" in resource:
        ordered["links"] = resource["links"]
    return ordered


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("schema", nargs="?", type=Path, default=DEFAULT_SCHEMA,
                        help=f"Heroku's platform-api schema.json (default {DEFAULT_SCHEMA})")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the contract at --output differs from what the schema gives")
    args = parser.parse_args(argv)
    try:
        text = contract_text(contract_from_file(args.schema))
    except ContractError as exc:
        print(f"heroku_contract: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != text:
            print(f"heroku_contract: {args.output} is not what {args.schema} gives; run scripts/heroku_contract.py",
                  file=sys.stderr)
            return 1
        print(f"heroku_contract: {args.output} matches {args.schema}")
        return 0
    temporary = args.output.with_name(args.output.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(args.output)  # never a half-written contract
    print(f"heroku_contract: wrote {args.output} ({len(text.encode()):,} bytes, {len(ENDPOINTS)} endpoints)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
