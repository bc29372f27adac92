"""The runtime needs neither scikit-learn nor SciPy: serving and training import neither."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Trains on Iris and on a table, stores the model, then serves it through the app's
# lifespan (POST /predict, V2 infer, /backprop) and answers the modules it loaded.
SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from model.data import Table
from model.train import TrainConfig, train
from service.app import create_app
from service.settings import Settings
from service.store import ModelStore

store_dir = Path(tempfile.mkdtemp()) / "models"
store = ModelStore(store_dir)
train(TrainConfig(features=None, target="species", optimizer="lbfgs"))
table = Table(["a", "b"], [[0, 1], [1, 0], [2, 2], [3, 1]], ["p", "q", "p", "q"])
train(TrainConfig(features=None), table)
store.registry.set_active(store.save(train(TrainConfig())))
store.close()
settings = Settings(model_dir=store_dir, api_token="t" * 32, train_on_empty=False)
with TestClient(create_app(settings)) as client:
    auth = {"Authorization": "Bearer " + "t" * 32}
    answers = [
        client.post("/predict", json={"instances": [[5.1, 3.5]]}, headers=auth),
        client.post(
            "/v2/models/iris-net/infer",
            json={"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP64",
                              "data": [5.1, 3.5]}]},
            headers=auth,
        ),
        client.get("/backprop?weights=lecture&x=5&x=3&label=1"),
    ]
print(json.dumps({"status": [r.status_code for r in answers], "modules": sorted(sys.modules)}))
"""


def test_serving_and_training_load_neither_scikit_learn_nor_scipy() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == [200, 200, 200], report["status"]
    loaded = [m for m in report["modules"] if m.split(".")[0] in ("sklearn", "scipy")]
    assert loaded == [], loaded
