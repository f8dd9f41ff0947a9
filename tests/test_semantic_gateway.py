"""The gateway with a standard WoT client: Eclipse Thingweb node-wot (run with this machine's
Node.js) consumes an emulated mps2-an386 device's TD from `tinytrain serve`, reads its
properties, writes its learning rate, invokes infer and train and follows the training
progress; the device's weights then equal the host simulation's after the same steps bit
for bit; the same writes without the credential are refused and change nothing. Also: the
TD `describe --td` writes is valid and, registered, answers SPARQL with inspect's figures.
One device for the whole module."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from conftest import ROOT
from semantic_helpers import DIGITS, WOT, w3c_documents
from tinytrain.predict import predicted_class

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None
                                or shutil.which("node") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc / node not installed")

TOKEN = "test-token-for-the-gateway"
LR = 0.005
N_TRAIN = 40


def tinytrain(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def node_modules():
    """node-wot, installed outside the clone by scripts/setup_node.sh (idempotent)."""
    proc = subprocess.run([str(ROOT / "scripts" / "setup_node.sh")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """Build and boot the digits CNN (--train last:2) on mps2-an386, take its TD with
    `describe --td`, then serve it; everything is stopped at the end."""
    tmp = tmp_path_factory.mktemp("gateway")
    fw = tmp / "fw"
    ok(tinytrain("build", DIGITS, "--train", "last:2", "--board", "mps2-an386", "-o", fw))
    url = ok(tinytrain("flash", fw, "--detach")).split("port: ")[1].split()[0]
    server = None
    try:
        described = json.loads(ok(tinytrain("describe", "--port", url, "--td", "--project", fw)))
        scanned = json.loads(ok(tinytrain("fleet", "scan", "--port", url, "--store", tmp / "scanned", "--json")))
        (tmp / "tok").write_text(TOKEN + "\n")
        server = subprocess.Popen([sys.executable, "-m", "tinytrain", "serve", "--project", str(fw), "--listen",
                                   "127.0.0.1:0", "--token-file", str(tmp / "tok"), "--register", str(tmp / "served")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
        first = server.stdout.readline()
        assert first.startswith("serving http://127.0.0.1:"), first + server.stderr.read()
        thing_url = server.stdout.readline().split()[0]
        yield dict(tmp=tmp, fw=fw, port=url, url=thing_url, base=first.split()[1], described=described,
                   scanned=scanned)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        ok(tinytrain("stop", fw))


def consume(node_modules, url, token, steps, tmp):
    """Run the node-wot client (tests/wot/consume.js) on the Thing at `url`."""
    script = tmp / f"script-{time.monotonic_ns()}.json"
    script.write_text(json.dumps(steps))
    proc = subprocess.run(["node", str(ROOT / "tests" / "wot" / "consume.js"), url, token or "-", str(script)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, NODE_PATH=node_modules))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def call(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            data = resp.read()
            return resp.status, dict(resp.headers), (json.loads(data) if data else None)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def _samples():
    z = np.load(ROOT / "examples" / "digits" / "digits_test.npz")
    return z["x"][100:100 + N_TRAIN], z["y"][100:100 + N_TRAIN]


def test_node_wot_trains_the_device_exactly_as_the_host_simulation(gateway, node_modules, tmp_path):
    from tinytrain.frontends import load_model
    from tinytrain.hostmodel import quantize_input
    from tinytrain.training.host import HostTrainer
    x, y = _samples()
    steps = [{"op": "read", "name": "model"}, {"op": "read", "name": "statistics"},
             {"op": "read", "name": "weightsCrc"},
             {"op": "write", "name": "learningRate", "value": LR}, {"op": "read", "name": "learningRate"},
             {"op": "invoke", "name": "infer", "input": {"samples": x[:3].reshape(3, -1).tolist()}},
             {"op": "subscribe", "name": "trainingProgress"},
             {"op": "invoke", "name": "train",
              "input": {"samples": x.reshape(N_TRAIN, -1).tolist(), "labels": y.tolist()}},
             {"op": "events", "name": "trainingProgress", "wait": 5000, "atLeast": 1},
             {"op": "unsubscribe", "name": "trainingProgress"},
             {"op": "read", "name": "statistics"}, {"op": "read", "name": "weightsCrc"},
             {"op": "read", "name": "weights"}]
    out = consume(node_modules, gateway["url"], TOKEN, steps, tmp_path)
    r = out["results"]
    assert all(step["ok"] for step in r), [s for s in r if not s["ok"]]
    model, stats0, crc0, _, lr, inferred, _, trained, events, _, stats1, crc1, weights = [s["value"] for s in r]
    assert out["td"]["title"] == "digits_cnn on mps2-an386" and model["name"] == "digits_cnn"
    assert abs(lr - LR) < 1e-9
    assert trained["samples"] == N_TRAIN and trained["steps"] == stats0["steps"] + N_TRAIN
    assert stats1["trainSamples"] == stats0["trainSamples"] + N_TRAIN
    assert events and events[-1]["total"] == N_TRAIN and all(e["samples"] <= N_TRAIN for e in events)
    assert crc1["crc32"] != crc0["crc32"]

    # The host simulation of the same build, the same learning rate and the same samples
    # (quantized as the gateway and `tinytrain train` quantize them).
    graph = load_model(DIGITS)
    t = graph.tensors[graph.inputs[0]]
    xq = quantize_input(x, t.scale, t.zero_point)
    with HostTrainer.build(graph, "last:2", tmp_path / "host", lr=0.01) as host:
        host_out = host.infer(xq[:3])
        assert predicted_class(np.asarray(host_out).reshape(len(host_out), -1)).tolist() == inferred["predicted"]
        np.testing.assert_array_equal(np.asarray(inferred["outputs"]), host_out.reshape(3, -1))
        host.set_hparams(np.float32(LR))
        host.train_many(xq, y.tolist())
        want = host.params()
    assert set(weights["params"]) == set(want)
    for name, value in want.items():
        np.testing.assert_array_equal(np.asarray(weights["params"][name]).reshape(value.shape), value, err_msg=name)
    assert weights["crc32"] == crc1["crc32"]


def test_changes_without_the_credential_are_refused(gateway, node_modules, tmp_path):
    x, y = _samples()
    before = {p: call("GET", f"{gateway['url']}/properties/{p}")[2] for p in ("learningRate", "weightsCrc")}
    attempts = [{"op": "read", "name": "statistics"},
                {"op": "write", "name": "learningRate", "value": 0.5},
                {"op": "invoke", "name": "train", "input": {"samples": x[:4].reshape(4, -1).tolist(),
                                                            "labels": y[:4].tolist()}},
                {"op": "write", "name": "weights", "value": {"modelHash": "0" * 16, "params": {}}},
                {"op": "invoke", "name": "saveWeights"}]
    # A client that ignores the TD's security (sends no credential), and one with a wrong token.
    for token, steps in ((None, [{"securityOverride": "nosec"}] + attempts), ("wrong-token", attempts)):
        r = consume(node_modules, gateway["url"], token, steps, tmp_path)["results"]
        assert r[0]["ok"], r[0]                                  # reading is open
        for refused in r[1:]:
            assert not refused["ok"] and "Unauthorized" in refused["error"], refused
    after = {p: call("GET", f"{gateway['url']}/properties/{p}")[2] for p in ("learningRate", "weightsCrc")}
    assert after == before, "a refused request changed the device"
    # The same over plain HTTP: 401 with the scheme named, before the device is touched.
    status, headers, body = call("POST", f"{gateway['url']}/actions/train",
                                 {"samples": x[:1].reshape(1, -1).tolist(), "labels": [int(y[0])]})
    assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer") and "token" in body["error"]
    assert call("PUT", f"{gateway['url']}/properties/mode", "eval")[0] == 401
    assert call("PUT", f"{gateway['url']}/properties/model", {}, token=TOKEN)[0] == 405
    assert call("GET", f"{gateway['url']}/properties/nothing")[0] == 404
    assert call("POST", f"{gateway['url']}/actions/infer", {"samples": [[1, 2]]}, token=TOKEN)[0] == 400
    assert call("GET", f"{gateway['url']}/properties/weightsCrc")[2] == before["weightsCrc"]


def test_training_progress_streams_as_server_sent_events(gateway):
    x, y = _samples()
    parsed = urllib.parse.urlsplit(gateway["url"])
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    conn.request("GET", parsed.path + "/events/trainingProgress?stream=sse")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    got = []

    def read():
        while len(got) < 2:
            line = resp.fp.readline().decode()
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    status, _, result = call("POST", f"{gateway['url']}/actions/train",
                             {"samples": x[:20].reshape(20, -1).tolist(), "labels": y[:20].tolist()}, token=TOKEN)
    reader.join(timeout=60)
    conn.close()
    assert status == 200 and result["samples"] == 20
    assert [e["samples"] for e in got] == [16, 20] and got[-1]["total"] == 20


def test_the_td_is_valid_and_sparql_answers_inspects_figures(gateway, tmp_path):
    import jsonschema
    import pyshacl
    import rdflib
    from tinytrain.semantic.contexts import to_triples
    from tinytrain.semantic.validate import rdflib_graph
    td = gateway["described"]
    schema = json.loads((WOT / "td-json-schema-validation.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(td)) == []
    shapes = rdflib.Graph().parse(str(WOT / "td-validation.ttl"), format="turtle")
    conforms, _, text = pyshacl.validate(rdflib_graph(to_triples(td, w3c_documents())), shacl_graph=shapes)
    assert conforms, text[:2000]
    # the gateway serves the same description, with forms on itself
    status, headers, served = call("GET", gateway["url"])
    assert status == 200 and headers["Content-Type"] == "application/td+json" and served["id"] == td["id"]
    assert served["tt:runs"] == td["tt:runs"] and served["tt:runs"]["tt:scheme"] == "last:2"
    assert all(f["href"].startswith(gateway["base"]) for p in served["properties"].values() for f in p["forms"])
    assert call("GET", served["links"][0]["href"])[2]["@type"] == "tm:ThingModel"
    # registered, SPARQL returns the hash, arena and trainable bytes `inspect --json` prints
    (tmp_path / "td.json").write_text(json.dumps(td))
    store = str(tmp_path / "store")
    ok(tinytrain("fleet", "add", tmp_path / "td.json", "--store", store))
    inspected = json.loads(ok(tinytrain("inspect", DIGITS, "--train", "last:2", "--json")))
    rows = json.loads(ok(tinytrain("fleet", "query", "--hash", inspected["model_hash"], "--store", store, "--json")))
    assert len(rows) == 1 and rows[0]["device"] == td["id"] and rows[0]["port"] == gateway["port"]
    assert rows[0]["arenaBytes"] == inspected["memory"]["arena_bytes"]
    assert rows[0]["trainableBytes"] == inspected["memory"]["trainable_param_bytes"]
    # `fleet scan --port` registered the same device
    assert gateway["scanned"]["registered"][0]["id"] == td["id"] and not gateway["scanned"]["not_found"]
    listed = json.loads(ok(tinytrain("fleet", "list", "--store", gateway["tmp"] / "scanned", "--json")))
    assert [r["modelHash"] for r in listed] == [inspected["model_hash"]]
    # and `serve --register` registered what it serves
    served_list = json.loads(ok(tinytrain("fleet", "list", "--store", gateway["tmp"] / "served", "--json")))
    assert [r["device"] for r in served_list] == [td["id"]]
