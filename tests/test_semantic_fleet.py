"""The fleet registry through the CLI, as a user types it: add (validated, all or none),
list, query --hash / --diverged / FILE.rq, check, remove; on the embedded store and on a
SPARQL 1.1 server (the `oxigraph` server, started here), which give the same answers."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from semantic_helpers import DIGITS, device_td

DIGITS_BOARDS = ("mps2-an386", "pico", "disco_f746ng")


def tinytrain(*args, cwd=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, input=stdin, timeout=300)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sparql_server(tmp_path_factory):
    """An Oxigraph SPARQL 1.1 server on loopback; stopped at the end."""
    exe = shutil.which("oxigraph") or str(__import__("pathlib").Path(sys.executable).with_name("oxigraph"))
    port = _free_port()
    proc = subprocess.Popen([exe, "serve", "--location", str(tmp_path_factory.mktemp("oxigraph")),
                             "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/query?query=ASK%7B%7D", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the oxigraph server did not start")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fleet_files(tmp_path_factory):
    """Four device TDs (the digits model on three boards; two share weights, one diverged)
    and a weights file naming the diverged device's weights as the fleet's."""
    tmp = tmp_path_factory.mktemp("tds")
    docs = [device_td("digits_cnn", board, port=f"socket://127.0.0.1:{5000 + i}", crc=0xAAAA, steps=10 * i)
            for i, board in enumerate(DIGITS_BOARDS)]
    docs.append(device_td("digits_cnn", "pico", port="socket://127.0.0.1:5009", crc=0xBBBB, steps=99))
    paths = []
    for i, doc in enumerate(docs):
        paths.append(tmp / f"td{i}.json")
        paths[-1].write_text(json.dumps(doc))
    params = np.arange(16, dtype=np.int8)
    np.savez(tmp / "release.npz", **{"param/w": params}, model_hash=np.array(docs[0]["tt:runs"]["tt:modelHash"]),
             crc32=np.array(0xBBBB, dtype=np.uint32), order=np.array(["w"]))
    return tmp, docs, paths


def _stores(tmp_path, server):
    return [str(tmp_path / "store"), server]


def _run_session(store, fleet_files, tmp):
    """The same session on a store; returns what the queries answered."""
    _, docs, paths = fleet_files
    out = json.loads(ok(tinytrain("fleet", "add", *paths, "--store", store, "--json", cwd=tmp)))
    assert [r["kind"] for r in out] == ["device"] * 4
    listed = json.loads(ok(tinytrain("fleet", "list", "--store", store, "--json", cwd=tmp)))
    model_hash = docs[0]["tt:runs"]["tt:modelHash"]
    by_hash = json.loads(ok(tinytrain("fleet", "query", "--hash", model_hash, "--store", store, "--json", cwd=tmp)))
    majority = json.loads(ok(tinytrain("fleet", "query", "--diverged", "--store", store, "--json", cwd=tmp)))
    ok(tinytrain("fleet", "add", fleet_files[0] / "release.npz", "--store", store, cwd=tmp))
    released = json.loads(ok(tinytrain("fleet", "query", "--diverged", "--store", store, "--json", cwd=tmp)))
    rq = tmp / "boards.rq"
    rq.write_text("PREFIX tt: <urn:tinytrain:ns#>\nSELECT ?name ?sram WHERE { ?b a tt:Board ; tt:boardName ?name ; "
                  "tt:sramUsableBytes ?sram } ORDER BY ?name")
    custom = json.loads(ok(tinytrain("fleet", "query", rq, "--store", store, "--json", cwd=tmp)))
    fits = json.loads(ok(tinytrain("fleet", "query", "--fits", DIGITS, "--train", "last:2", "--store", store,
                                   "--json", cwd=tmp)))
    checked = tinytrain("fleet", "check", "--store", store, cwd=tmp)
    ok(tinytrain("fleet", "remove", docs[3]["id"], "--store", store, cwd=tmp))
    after = json.loads(ok(tinytrain("fleet", "list", "--store", store, "--json", cwd=tmp)))
    return dict(listed=listed, by_hash=by_hash, majority=majority, released=released, custom=custom,
                fits=fits, checked=checked, after=after)


@pytest.fixture(scope="module")
def answers(fleet_files, sparql_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sessions")
    return {kind: _run_session(store, fleet_files, tmp)
            for kind, store in (("embedded", str(tmp / "store")), ("remote", sparql_server))}


def test_registry_answers(answers, fleet_files):
    _, docs, _ = fleet_files
    a = answers["embedded"]
    assert {r["device"] for r in a["listed"]} == {d["id"] for d in docs}
    assert len(a["by_hash"]) == 4
    row = next(r for r in a["by_hash"] if r["device"] == docs[0]["id"])
    model = docs[0]["tt:runs"]
    assert (row["arenaBytes"], row["trainableBytes"], row["board"]) == (
        model["tt:arenaBytes"], model["tt:trainableBytes"], "mps2-an386")
    # majority: three devices share 0xAAAA, so the fourth diverged
    assert [r["device"] for r in a["majority"]["diverged"]] == [docs[3]["id"]]
    assert a["majority"]["references"][model["tt:modelHash"]]["basis"] == "majority"
    # a registered release (0xBBBB) makes the other three the diverged ones
    assert sorted(r["device"] for r in a["released"]["diverged"]) == sorted(d["id"] for d in docs[:3])
    assert a["released"]["references"][model["tt:modelHash"]] == dict(crc32=0xBBBB, basis="release", devices=4)
    assert [r["name"] for r in a["custom"]] == sorted(r["name"] for r in a["custom"]) and len(a["custom"]) == 8
    # the digits model fits every board: every registered device can take it
    assert all(b["fits"] for b in a["fits"]["boards"]) and len(a["fits"]["boards"]) == 8
    assert sorted(d["device"] for d in a["fits"]["devices"]) == sorted(d["id"] for d in docs)
    assert a["fits"]["model_hash"] == model["tt:modelHash"]
    assert a["checked"].returncode == 0, a["checked"].stdout
    assert {r["device"] for r in a["after"]} == {d["id"] for d in docs[:3]}


def test_remote_sparql_store_answers_the_same(answers):
    emb, rem = answers["embedded"], answers["remote"]
    for key in ("listed", "by_hash", "majority", "released", "custom", "fits", "after"):
        assert rem[key] == emb[key], key


def test_an_invalid_td_is_refused_with_the_shape_named_and_nothing_is_registered(fleet_files, tmp_path):
    _, docs, paths = fleet_files
    bad = json.loads(json.dumps(docs[0]))
    bad["id"] = "urn:tinytrain:device:00000000-0000-0000-0000-000000000000"
    bad["tt:runs"]["tt:modelHash"] = "not-a-hash"
    del bad["actions"]["infer"]["forms"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    store = str(tmp_path / "store")
    proc = tinytrain("fleet", "add", paths[1], tmp_path / "bad.json", "--store", store)
    assert proc.returncode == 2
    assert "tts:ModelHash" in proc.stderr and "tts:AffordanceForms" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(ok(tinytrain("fleet", "list", "--store", store, "--json"))) == [], "all or none"
    check = tinytrain("fleet", "check", tmp_path / "bad.json", paths[1], "--store", store)
    assert check.returncode == 1 and "tts:ModelHash" in check.stdout and f"{paths[1]}: ok" in check.stdout


def test_other_documents_and_errors_are_clear(tmp_path):
    store = str(tmp_path / "store")
    thing = {"@context": "https://www.w3.org/2022/wot/td/v1.1", "id": "urn:x:1", "@type": "Thing", "title": "lamp",
             "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc"}
    proc = tinytrain("fleet", "add", "-", "--store", store, stdin=json.dumps(thing))
    assert proc.returncode == 2 and "not a tt:Device" in proc.stderr
    proc = tinytrain("fleet", "add", "-", "--store", store, stdin="{not json")
    assert proc.returncode == 2 and "not JSON" in proc.stderr
    proc = tinytrain("fleet", "remove", "urn:tinytrain:device:nothing", "--store", store)
    assert proc.returncode == 2 and "nothing is registered" in proc.stderr
    proc = tinytrain("fleet", "remove", "urn:tinytrain:thing-model:pico", "--store", store)
    assert proc.returncode == 2 and "part of the registry" in proc.stderr
    proc = tinytrain("fleet", "query", "--store", "http://127.0.0.1:9/ds", "--hash", "0" * 16)
    assert proc.returncode == 2 and "cannot reach the SPARQL endpoint" in proc.stderr
    bad_rq = tmp_path / "bad.rq"
    bad_rq.write_text("SELECT WHERE {")
    proc = tinytrain("fleet", "query", bad_rq, "--store", store)
    assert proc.returncode == 2 and "SPARQL" in proc.stderr and "Traceback" not in proc.stderr

