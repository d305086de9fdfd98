"""The repository's Heroku contract (standins/heroku_contract.json) and its generator
(scripts/heroku_contract.py): the fake Heroku checks every request against it, so the tests
stand alone on a clone that has no ../shared/heroku."""

import hashlib
import importlib.util
import json
import subprocess
import sys

import pytest

from standins.heroku import _HANDLERS, CONTRACT_PATH, REPO_ROOT, FakeHeroku, HerokuSchema

GENERATOR = REPO_ROOT / "scripts" / "heroku_contract.py"
_spec = importlib.util.spec_from_file_location("heroku_contract", GENERATOR)
heroku_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heroku_contract)


def committed():
    return json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))


def test_the_contract_is_what_the_generator_makes_of_the_official_schema_it_names():
    """Always: the body is the one its header was generated with (no hand edits). Where Heroku's
    schema is beside the repository (../shared/heroku, not on a user's clone), also: it is that
    schema, and regenerating from it gives the committed file byte for byte."""
    contract = committed()
    header = contract["contract"]
    assert header["schema_sha256"] == heroku_contract.schema_digest(contract["schema"])
    assert header["generated_by"] == "scripts/heroku_contract.py"
    assert "github.com/heroku/platform-api" in header["source"]
    assert len(header["source_sha256"]) == 64
    assert header["endpoints"] == list(heroku_contract.ENDPOINTS)

    official = heroku_contract.DEFAULT_SCHEMA
    if official.is_file():
        assert hashlib.sha256(official.read_bytes()).hexdigest() == header["source_sha256"]
        regenerated = heroku_contract.contract_text(heroku_contract.contract_from_file(official))
        assert regenerated == CONTRACT_PATH.read_text(encoding="utf-8"), \
            "the committed contract is stale: run python3 scripts/heroku_contract.py"


def test_the_contract_has_exactly_the_links_the_fake_answers():
    schema = HerokuSchema(CONTRACT_PATH)
    assert {(route.method, route.href) for route in schema.routes} == set(_HANDLERS)


def test_every_reference_in_the_contract_resolves_inside_it():
    schema = committed()["schema"]
    references = list(heroku_contract._references(schema))
    assert len(references) > 20
    for pointer in references:
        heroku_contract._resolve(schema, pointer)  # raises ContractError when it does not


def test_the_fake_refuses_a_plan_given_as_an_object_by_the_contract_alone():
    fake = FakeHeroku(schema_path=CONTRACT_PATH)
    addon = fake.add_redis_addon("shop")
    status, _, body = fake.handle(
        "PATCH", f"/apps/shop/addons/{addon['id']}",
        {"Accept": "application/vnd.heroku+json; version=3", "Authorization": f"Bearer {fake.api_key}",
         "Content-Type": "application/json"},
        json.dumps({"plan": {"name": "heroku-redis:premium-1"}}).encode())
    assert (status, json.loads(body)["id"]) == (422, "invalid_params")
    assert fake.violations and "plan" in fake.violations[0]


SMALL_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/hyper-schema",
    "id": "http://api.example.test/schema#",
    "definitions": {
        "app": {
            "type": ["object"],
            "definitions": {
                "id": {"type": ["string"], "format": "uuid"},
                "name": {"type": ["string"]},
                "identity": {"anyOf": [{"$ref": "#/definitions/app/definitions/id"},
                                       {"$ref": "#/definitions/app/definitions/name"}]},
                "unused": {"type": ["boolean"]},
            },
            "properties": {"id": {"$ref": "#/definitions/app/definitions/id"},
                           "region": {"$ref": "#/definitions/region/definitions/name"}},
            "links": [
                {"method": "GET", "href": "/apps/{(%23%2Fdefinitions%2Fapp%2Fdefinitions%2Fidentity)}",
                 "targetSchema": {"$ref": "#/definitions/app"}},
                {"method": "DELETE", "href": "/apps/{(%23%2Fdefinitions%2Fapp%2Fdefinitions%2Fidentity)}",
                 "targetSchema": {"$ref": "#/definitions/app"}},
            ],
        },
        "region": {"definitions": {"name": {"type": ["string"]}, "id": {"type": ["string"]}},
                   "properties": {"id": {"$ref": "#/definitions/region/definitions/id"}},
                   "links": [{"method": "GET", "href": "/regions"}]},
        "dyno": {"definitions": {"name": {"type": ["string"]}}, "links": []},
    },
}


def test_the_generator_keeps_the_named_links_and_what_they_reach_at_the_same_pointers():
    contract = heroku_contract.contract_build(SMALL_SCHEMA, source_sha256="0" * 64, endpoints=("GET /apps/{app}",))
    schema = contract["schema"]

    assert set(schema["definitions"]) == {"app", "region"}
    app = schema["definitions"]["app"]
    assert [link["method"] for link in app["links"]] == ["GET"]
    assert set(app["definitions"]) == {"id", "name", "identity"}
    assert app["properties"] == SMALL_SCHEMA["definitions"]["app"]["properties"]
    assert schema["definitions"]["region"] == {"definitions": {"name": {"type": ["string"]}}}
    assert schema["id"] == SMALL_SCHEMA["id"]
    assert contract["contract"]["schema_sha256"] == heroku_contract.schema_digest(schema)


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the schema"),
    ("{not json", "is not JSON"),
    ('{"definitions": {}}', "endpoint(s) not in the schema: GET /account/rate-limits"),
    ('{"definitions": {"x": {"links": [{"method": "GET", "href": "/addons", "targetSchema": '
     '{"$ref": "#/definitions/nowhere"}}]}}}', "endpoint(s) not in the schema"),
])
def test_the_generator_refuses_a_bad_schema_in_one_line_and_writes_nothing(tmp_path, content, message):
    source, output = tmp_path / "schema.json", tmp_path / "contract.json"
    if content is not None:
        source.write_text(content)
    result = subprocess.run([sys.executable, str(GENERATOR), str(source), "--output", str(output)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists() and not output.with_name("contract.json.tmp").exists()


def test_the_generator_refuses_a_reference_that_resolves_nowhere():
    schema = json.loads(json.dumps(SMALL_SCHEMA))
    schema["definitions"]["app"]["properties"]["stack"] = {"$ref": "#/definitions/stack/definitions/name"}
    with pytest.raises(heroku_contract.ContractError, match="'#/definitions/stack/definitions/name' does not resolve"):
        heroku_contract.contract_build(schema, source_sha256="0" * 64, endpoints=("GET /apps/{app}",))


def test_check_passes_on_a_fresh_contract_and_fails_on_a_stale_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(heroku_contract, "ENDPOINTS", ("GET /apps/{app}",))
    source, output = tmp_path / "schema.json", tmp_path / "contract.json"
    source.write_text(json.dumps(SMALL_SCHEMA))
    assert heroku_contract.main([str(source), "--output", str(output)]) == 0
    assert heroku_contract.main([str(source), "--output", str(output), "--check"]) == 0

    output.write_text(output.read_text().replace('"uuid"', '"date-time"'))
    assert heroku_contract.main([str(source), "--output", str(output), "--check"]) == 1
    assert "is not what" in capsys.readouterr().err


def test_the_generator_writes_by_default_the_contract_the_fake_reads():
    assert heroku_contract.DEFAULT_OUTPUT.resolve() == CONTRACT_PATH.resolve()
